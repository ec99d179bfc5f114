//! A stage's own payload in its report: a typed value from the stage's folder (rls coverage
//! and recordings, lint's findings view) that serializes its fields after the shared ones and
//! renders itself on the console, in JUnit and in the GitHub job summary. The reporters ask
//! it; they name no stage.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use anstyle::Style;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use super::{Case, Failure, StageReport};

/// A stage's payload and its rendering. Every method but the fields has a default that adds
/// nothing, so a stage overrides only where it shows something of its own.
pub trait StageDetail: Any + fmt::Debug + Send + Sync + JsonFields {
    /// Lines the console prints under the stage's verdict line, each starting with `\n` and
    /// the console's indent.
    fn console(&self, _stage: &StageReport, _console: &Console) -> String {
        String::new()
    }

    /// What the stage adds to the GitHub job summary.
    fn summary(&self, _stage: &StageReport, _summary: &mut SummaryParts) {}

    /// The body of a failing JUnit testcase of this stage, when the stage knows better than
    /// the shared text which of `failures` (those at the case's file and line) it stands for.
    fn junit_failure_text(&self, _case: &Case, _failures: &[&Failure]) -> Option<String> {
        None
    }
}

/// The fields a detail adds to its stage in the JSON report, in the order its type declares
/// them: any `Serialize` type has them.
pub trait JsonFields {
    fn json_fields(&self) -> Vec<(String, Json)>;
}

impl<T: Serialize> JsonFields for T {
    fn json_fields(&self) -> Vec<(String, Json)> {
        // Through text, so that the order of keys (the JSON contract) survives; a detail that
        // is no map (a unit struct) adds no field.
        let parsed = serde_json::to_string(self)
            .ok()
            .and_then(|text| serde_json::from_str::<Json>(&text).ok());
        match parsed {
            Some(Json::Object(fields)) => fields,
            _ => Vec::new(),
        }
    }
}

/// The console's styles for a stage's lines, as `--color` set them.
pub struct Console {
    pub color: bool,
    /// Spaces under the verb column.
    pub indent: String,
}

impl Console {
    /// `text` in `style` when the console is coloured.
    pub fn paint(&self, style: Style, text: &str) -> String {
        if self.color {
            format!("{style}{text}{style:#}")
        } else {
            text.to_owned()
        }
    }
}

/// What stages add to the job summary: notes under the verdict table, and sections after the
/// failures, each with the words that name it when the size limit leaves it out.
#[derive(Default)]
pub struct SummaryParts {
    pub notes: Vec<String>,
    pub sections: Vec<(&'static str, String)>,
}

/// A stage report's detail: none, or one stage's typed payload.
#[derive(Clone, Default)]
pub struct Detail(Option<Arc<dyn StageDetail>>);

impl Detail {
    pub fn new(detail: impl StageDetail) -> Detail {
        Detail(Some(Arc::new(detail)))
    }

    pub fn get(&self) -> Option<&dyn StageDetail> {
        self.0.as_deref()
    }

    /// The payload as `T`, when it is one.
    pub fn of<T: StageDetail>(&self) -> Option<&T> {
        let any: &dyn Any = self.0.as_deref()?;
        any.downcast_ref::<T>()
    }

    /// The payload as `T` to change, made a default `T` when there is none (or another type).
    pub fn of_mut<T: StageDetail + Clone + Default>(&mut self) -> &mut T {
        let owned = match &mut self.0 {
            Some(arc) => Arc::get_mut(arc).is_some_and(|d| (d as &mut dyn Any).is::<T>()),
            None => false,
        };
        if !owned {
            let value = self.of::<T>().cloned().unwrap_or_default();
            self.0 = Some(Arc::new(value));
        }
        let arc = self.0.as_mut().expect("set above");
        let detail: &mut dyn Any = Arc::get_mut(arc).expect("owned above");
        detail.downcast_mut::<T>().expect("of type T above")
    }
}

impl fmt::Debug for Detail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(detail) => detail.fmt(f),
            None => f.write_str("None"),
        }
    }
}

/// A map of the detail's fields: flattened into the stage's object, so they follow its
/// shared fields as they always have.
impl Serialize for Detail {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let fields = self.0.as_ref().map(|d| d.json_fields()).unwrap_or_default();
        let mut map = serializer.serialize_map(Some(fields.len()))?;
        for (key, value) in &fields {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// A JSON value that keeps its keys in order (serde_json's `Value` sorts them).
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Null => serializer.serialize_unit(),
            Json::Bool(b) => serializer.serialize_bool(*b),
            Json::Unsigned(n) => serializer.serialize_u64(*n),
            Json::Signed(n) => serializer.serialize_i64(*n),
            Json::Float(n) => serializer.serialize_f64(*n),
            Json::String(s) => serializer.serialize_str(s),
            Json::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Json::Object(fields) => {
                let mut map = serializer.serialize_map(Some(fields.len()))?;
                for (key, value) in fields {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Json, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Json, D::Error> {
        Json::deserialize(d)
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Json, E> {
        Ok(Json::Bool(b))
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Json, E> {
        Ok(Json::Unsigned(n))
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Json, E> {
        Ok(Json::Signed(n))
    }
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Json, E> {
        Ok(Json::Float(n))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Json, E> {
        Ok(Json::String(s.to_owned()))
    }
    fn visit_string<E: de::Error>(self, s: String) -> Result<Json, E> {
        Ok(Json::String(s))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut fields = Vec::new();
        while let Some((key, value)) = map.next_entry::<String, Json>()? {
            fields.push((key, value));
        }
        Ok(Json::Object(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Default, serde::Serialize)]
    struct Demo {
        zeta: Option<f64>,
        alpha: Vec<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        gone: Option<u8>,
    }

    impl StageDetail for Demo {}

    #[test]
    fn a_detail_serializes_its_fields_in_declared_order_and_is_read_back_typed() {
        let mut detail = Detail::new(Demo {
            zeta: Some(50.0),
            alpha: vec![1, 2],
            gone: None,
        });
        assert_eq!(
            serde_json::to_string(&detail).unwrap(),
            r#"{"zeta":50.0,"alpha":[1,2]}"#
        );
        assert_eq!(detail.of::<Demo>().unwrap().alpha, [1, 2]);
        detail.of_mut::<Demo>().alpha.push(3);
        let shared = detail.clone();
        detail.of_mut::<Demo>().alpha.push(4);
        assert_eq!(shared.of::<Demo>().unwrap().alpha, [1, 2, 3]);
        assert_eq!(detail.of::<Demo>().unwrap().alpha, [1, 2, 3, 4]);
        assert_eq!(serde_json::to_string(&Detail::default()).unwrap(), "{}");
    }
}
