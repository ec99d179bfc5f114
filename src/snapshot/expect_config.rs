//! `expect:` in db-ci.yaml: the catalog expectations (counts, objects that must exist) as
//! read and parsed; the snapshot stage checks them.

use serde::Deserialize;

use crate::config::{Section, SectionRegistration};
use crate::error::Error;

impl Section for ExpectConfig {
    const KEY: &'static str = "expect";
}

inventory::submit!(SectionRegistration::of::<ExpectConfig>());

/// `expect:` in db-ci.yaml.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectConfig {
    /// The project's tables (platform tables excluded).
    #[serde(default, deserialize_with = "some_count")]
    pub tables: Option<Count>,
    /// Views and materialized views.
    #[serde(default, deserialize_with = "some_count")]
    pub views: Option<Count>,
    /// Functions and procedures.
    #[serde(default, deserialize_with = "some_count")]
    pub functions: Option<Count>,
    /// Policies, also those on platform tables such as `storage.objects`.
    #[serde(default, deserialize_with = "some_count")]
    pub policies: Option<Count>,
    #[serde(default, deserialize_with = "some_count")]
    pub triggers: Option<Count>,
    /// Objects that must exist: `table public.profiles`, `view public.v`,
    /// `function public.handle_new_user`, `policy "name" on public.t`,
    /// `trigger on_auth_user_created on auth.users`, `type public.mood`, `extension vector`.
    #[serde(default, deserialize_with = "object_references")]
    pub objects: Vec<ObjectRef>,
}

/// One `expect.objects` entry, parsed while db-ci.yaml is read; printed as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    text: String,
    pub(crate) object: Object,
}

/// What an `expect.objects` entry names. Names are `schema.name` (a routine may give its
/// arguments too), an extension's is bare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Object {
    Table(String),
    View(String),
    /// `function …` or `procedure …`.
    Routine(String),
    Type(String),
    Extension(String),
    Policy {
        name: String,
        table: String,
    },
    Trigger {
        name: String,
        table: String,
    },
}

impl ObjectRef {
    /// `None` when `reference` has no form db-ci understands.
    pub fn parse(reference: &str) -> Option<ObjectRef> {
        let (kind, rest) = reference.split_once(' ').unwrap_or((reference, ""));
        let rest = rest.trim();
        let named = |make: fn(String) -> Object| (!rest.is_empty()).then(|| make(rest.to_owned()));
        let on = || {
            let (name, table) = rest.rsplit_once(" on ")?;
            Some((
                name.trim().trim_matches('"').to_owned(),
                table.trim().to_owned(),
            ))
        };
        let object = match kind {
            "table" => named(Object::Table)?,
            "view" => named(Object::View)?,
            "function" | "procedure" => named(Object::Routine)?,
            "type" => named(Object::Type)?,
            "extension" => named(Object::Extension)?,
            "policy" => {
                let (name, table) = on()?;
                Object::Policy { name, table }
            }
            "trigger" => {
                let (name, table) = on()?;
                Object::Trigger { name, table }
            }
            _ => return None,
        };
        Some(ObjectRef {
            text: reference.to_owned(),
            object,
        })
    }
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl ExpectConfig {
    pub fn is_empty(&self) -> bool {
        self.tables.is_none()
            && self.views.is_none()
            && self.functions.is_none()
            && self.policies.is_none()
            && self.triggers.is_none()
            && self.objects.is_empty()
    }
}

/// An exact count (`38`) or bounds (`{min: 33}`, `{min: 1, max: 5}`).
#[derive(Debug, Clone, Copy)]
pub enum Count {
    Exactly(usize),
    Between {
        min: Option<usize>,
        max: Option<usize>,
    },
}

/// `{min, max}` as written: strict, so `{mni: 999}` is an error, not "any number".
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Bounds {
    min: Option<usize>,
    max: Option<usize>,
}

/// A count that expects something: a number, or bounds with `min` or `max`. An empty value
/// (`~`, `{}`) would be an expectation that always holds, so it is an input error.
impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::{self, MapAccess, Visitor};
        struct CountVisitor;
        const WANT: &str = "a number, or `{min: N}`, `{max: N}`, `{min: N, max: M}`";
        impl<'de> Visitor<'de> for CountVisitor {
            type Value = Count;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(WANT)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Count, E> {
                usize::try_from(v)
                    .map(Count::Exactly)
                    .map_err(|_| E::custom(format!("{v} is too large")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Count, E> {
                Err(E::custom(format!("{v}: a count is not negative")))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Count, E> {
                Err(E::custom(format!(
                    "an empty count expects nothing: write {WANT}"
                )))
            }
            fn visit_none<E: de::Error>(self) -> Result<Count, E> {
                self.visit_unit()
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Count, A::Error> {
                let bounds = Bounds::deserialize(de::value::MapAccessDeserializer::new(map))?;
                match (bounds.min, bounds.max) {
                    (None, None) => Err(de::Error::custom(format!(
                        "`{{}}` expects nothing: write {WANT}"
                    ))),
                    (Some(min), Some(max)) if min > max => Err(de::Error::custom(format!(
                        "min {min} is above max {max}: no catalog can hold it"
                    ))),
                    (min, max) => Ok(Count::Between { min, max }),
                }
            }
        }
        deserializer.deserialize_any(CountVisitor)
    }
}

/// `tables: ~` is not "no expectation" but a mistake: every count given must expect something.
fn some_count<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Count>, D::Error> {
    Count::deserialize(deserializer).map(Some)
}

/// Object references, each parsed while the file is read.
fn object_references<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<ObjectRef>, D::Error> {
    Vec::<String>::deserialize(deserializer)?
        .iter()
        .map(|reference| {
            ObjectRef::parse(reference)
                .ok_or_else(|| serde::de::Error::custom(bad_reference(reference)))
        })
        .collect()
}

impl Count {
    pub(crate) fn holds(self, n: usize) -> bool {
        match self {
            Count::Exactly(want) => n == want,
            Count::Between { min, max } => min.is_none_or(|m| n >= m) && max.is_none_or(|m| n <= m),
        }
    }

    pub(crate) fn describe(self) -> String {
        match self {
            Count::Exactly(n) => format!("exactly {n}"),
            Count::Between {
                min: Some(a),
                max: Some(b),
            } => format!("between {a} and {b}"),
            Count::Between {
                min: Some(a),
                max: None,
            } => format!("at least {a}"),
            Count::Between {
                min: None,
                max: Some(b),
            } => format!("at most {b}"),
            Count::Between { .. } => "any number".to_owned(),
        }
    }
}

fn bad_reference(reference: &str) -> Error {
    Error::input(format!(
        "read `expect.objects` entry {reference:?} in db-ci.yaml: write `table schema.name`, \
         `view …`, `function …`, `type …`, `extension name`, `policy \"name\" on schema.table` \
         or `trigger name on schema.table`"
    ))
}
