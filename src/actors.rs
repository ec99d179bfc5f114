//! Actors: who a check runs as (anon, signed-in users, service_role, custom roles), the
//! `auth.users` rows behind them, and impersonation the way PostgREST does it.
//!
//! Shared by the rls and properties stages so that a property's `as:` runs exactly like an
//! RLS cell.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::sql::quote_literal;

/// The `exp` and `iat` every impersonated JWT carries: fixed, so that a run is reproducible
/// byte for byte, and far enough ahead that no policy comparing `exp` with `now()` rejects it.
pub const JWT_EXP: i64 = 4_102_444_800; // 2100-01-01
pub const JWT_IAT: i64 = 1_700_000_000;

/// How an actor is written in YAML: a role name (`anon`, `service_role`, `authenticated`, or
/// any custom role) or a map describing a signed-in user.
#[derive(Debug, Clone, PartialEq)]
pub enum ActorSpec {
    Role(String),
    User(Box<UserSpec>),
}

/// `{ user: alice@example.com, app_metadata: …, … }`, `{ role: my_role }`, or a user the
/// project's seed already created: `{ user: { id: <uuid> } }`, `{ existing: <email> }`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    /// The user's email: makes the actor an authenticated user with an `auth.users` row;
    /// or `{ id: <uuid> }`: the seeded user with that id.
    pub user: Option<UserField>,
    /// The email of a seeded user the actor acts as (no row is inserted).
    pub existing: Option<String>,
    /// The database role to run as (default `authenticated` for users).
    pub role: Option<String>,
    /// Fix the user's id instead of the deterministic one derived from the actor's name.
    pub id: Option<String>,
    pub phone: Option<String>,
    /// Merged over GoTrue's default `{"provider": "email", "providers": ["email"]}`.
    pub app_metadata: Option<Value>,
    pub user_metadata: Option<Value>,
    /// `aal1` (default) or `aal2`.
    pub aal: Option<String>,
    #[serde(default)]
    pub is_anonymous: bool,
    /// Extra claims merged into the JWT last (e.g. a custom `user_role` from an auth hook).
    pub claims: Option<Value>,
}

/// `user:`: an email (a new user db-ci creates) or `{ id: <uuid> }` (a seeded one).
#[derive(Debug, Clone, PartialEq)]
pub enum UserField {
    Email(String),
    Existing { id: String },
}

impl<'de> Deserialize<'de> for UserField {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct ById {
            id: String,
        }
        struct FieldVisitor;
        impl<'de> Visitor<'de> for FieldVisitor {
            type Value = UserField;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an email, or { id: <uuid> } for a user the seed created")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<UserField, E> {
                Ok(UserField::Email(v.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<UserField, A::Error> {
                ById::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|by| UserField::Existing { id: by.id })
            }
        }
        deserializer.deserialize_any(FieldVisitor)
    }
}

/// Which seeded `auth.users` row an actor is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Existing {
    Id(String),
    Email(String),
}

impl fmt::Display for Existing {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Existing::Id(id) => write!(f, "id {id}"),
            Existing::Email(email) => write!(f, "email {email}"),
        }
    }
}

/// The `auth.users` row a bound actor's claims are built from.
#[derive(Debug, Clone, PartialEq)]
pub struct SeededUser {
    pub id: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub app_metadata: Value,
    pub user_metadata: Value,
    pub is_anonymous: bool,
}

impl<'de> Deserialize<'de> for ActorSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SpecVisitor;
        impl<'de> Visitor<'de> for SpecVisitor {
            type Value = ActorSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a role name (anon, service_role, …) or a map like { user: alice@example.com }",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ActorSpec, E> {
                Ok(ActorSpec::Role(v.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ActorSpec, A::Error> {
                UserSpec::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|user| ActorSpec::User(Box::new(user)))
            }
        }
        deserializer.deserialize_any(SpecVisitor)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorKind {
    Anon,
    /// A signed-in user with an `auth.users` row.
    User,
    ServiceRole,
    /// Any other database role, with `role` as its only claim.
    Custom,
}

/// A resolved actor: the role it runs as and the JWT claims it carries.
#[derive(Debug, Clone)]
pub struct Actor {
    pub name: String,
    pub kind: ActorKind,
    /// The database role `SET LOCAL ROLE` switches to.
    pub db_role: String,
    /// The `auth.users` id of a user actor.
    pub id: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub app_metadata: Value,
    pub user_metadata: Value,
    pub is_anonymous: bool,
    /// The `request.jwt.claims` object.
    pub claims: Value,
    /// A user the project's seed created: no row is inserted, and the id (for `existing:`),
    /// email, phone, metadata and claims come from that row once bound (see
    /// [`Actor::bind`]); until then they are placeholders, good for checking templates.
    pub existing: Option<Existing>,
    /// What the spec adds to a bound user's claims: its role, aal and extra claims.
    spec: Option<UserSpec>,
}

/// The deterministic user id of an actor: the same name gives the same id in every run, so
/// templates and reproducers print stable SQL.
pub fn deterministic_id(name: &str) -> String {
    let digest = Sha256::digest(format!("db-ci actor {name}").as_bytes());
    let mut bytes: [u8; 16] = digest[..16]
        .try_into()
        .expect("a sha256 digest has 32 bytes");
    bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4 layout, so every uuid parser accepts it
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// What is wrong with an actor: how it is written, the session it runs in, or a placeholder
/// naming it. Each names the actor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActorError {
    #[error(
        "actor `{0}`: an authenticated actor is a user; write `{0}: {{ user: {0}@example.com }}`"
    )]
    AuthenticatedIsAUser(String),
    #[error("actor `{actor}`: id `{id}` is not a uuid")]
    NotAUuid { actor: String, id: String },
    #[error("actor `{0}`: give `user:` for a new user or `existing:` for a seeded one, not both")]
    NewAndExisting(String),
    #[error(
        "actor `{actor}`: `{key}` comes from the seeded user's auth.users row; leave it out \
         (role, aal and claims may be given)"
    )]
    FromTheSeededRow { actor: String, key: &'static str },
    #[error(
        "actor `{0}`: give `user: <email>` for a signed-in user or `role: <role>` for a database role"
    )]
    NeitherUserNorRole(String),
    #[error("actor `{actor}`: aal must be aal1 or aal2, not `{aal}`")]
    Aal { actor: String, aal: String },
    #[error("actors `{first}` and `{second}` have the same email {email}")]
    SameEmail {
        first: String,
        second: String,
        email: String,
    },
    #[error("actor `{actor}` should run as role `{role}` but the session runs as `{user}`")]
    WrongRole {
        actor: String,
        role: String,
        user: String,
    },
    #[error(
        "actor `{actor}` runs as `{user}`, a superuser: row level security does not apply, so \
         no cell can be trusted"
    )]
    Superuser { actor: String, user: String },
    #[error("actor `{actor}` runs as `{user}`, which has BYPASSRLS: only service_role may")]
    BypassRls { actor: String, user: String },
    #[error("`{{{{{actor}.{field}}}}}` names no actor (actors: {})", .known.join(", "))]
    NoSuchActor {
        actor: String,
        field: String,
        known: Vec<String>,
    },
    #[error(
        "`{{{{{actor}.{field}}}}}`: actor `{actor}` has no {field} (fields: id, email, phone, \
         role, name; email and phone only for users)"
    )]
    NoSuchField { actor: String, field: String },
}

impl Actor {
    /// Resolves `spec` for the actor called `name`; the error says what is wrong with it.
    pub fn resolve(name: &str, spec: &ActorSpec) -> Result<Actor, ActorError> {
        let mut actor = Actor {
            name: name.to_owned(),
            kind: ActorKind::Custom,
            db_role: String::new(),
            id: None,
            email: None,
            phone: None,
            app_metadata: Value::Null,
            user_metadata: Value::Null,
            is_anonymous: false,
            claims: Value::Null,
            existing: None,
            spec: None,
        };
        match spec {
            ActorSpec::Role(role) => {
                actor.db_role = role.clone();
                actor.kind = match role.as_str() {
                    "anon" => ActorKind::Anon,
                    "service_role" => ActorKind::ServiceRole,
                    "authenticated" => {
                        return Err(ActorError::AuthenticatedIsAUser(name.to_owned()))
                    }
                    _ => ActorKind::Custom,
                };
                actor.claims =
                    json!({ "iss": "supabase", "role": role, "iat": JWT_IAT, "exp": JWT_EXP });
            }
            ActorSpec::User(user)
                if user.existing.is_some()
                    || matches!(user.user, Some(UserField::Existing { .. })) =>
            {
                let existing = match (&user.user, &user.existing) {
                    (Some(UserField::Existing { id }), None) => {
                        if !is_uuid(id) {
                            return Err(ActorError::NotAUuid {
                                actor: name.to_owned(),
                                id: id.clone(),
                            });
                        }
                        Existing::Id(id.to_lowercase())
                    }
                    (None, Some(email)) => Existing::Email(email.clone()),
                    _ => return Err(ActorError::NewAndExisting(name.to_owned())),
                };
                // These come from the seeded row: a second source would contradict it.
                for (key, given) in [
                    ("id", user.id.is_some()),
                    ("phone", user.phone.is_some()),
                    ("app_metadata", user.app_metadata.is_some()),
                    ("user_metadata", user.user_metadata.is_some()),
                    ("is_anonymous", user.is_anonymous),
                ] {
                    if given {
                        return Err(ActorError::FromTheSeededRow {
                            actor: name.to_owned(),
                            key,
                        });
                    }
                }
                // Placeholders until bound: the id of `user: {{ id }}` is already known.
                let placeholder = SeededUser {
                    id: match &existing {
                        Existing::Id(id) => id.clone(),
                        Existing::Email(_) => deterministic_id(name),
                    },
                    // Empty, not absent: `{{name.email}}` and `{{name.phone}}` are checked
                    // when the file is read, before the row is known.
                    email: match &existing {
                        Existing::Email(email) => Some(email.clone()),
                        Existing::Id(_) => Some(String::new()),
                    },
                    phone: Some(String::new()),
                    app_metadata: json!({}),
                    user_metadata: json!({}),
                    is_anonymous: false,
                };
                actor.spec = Some((**user).clone());
                actor.existing = Some(existing);
                actor.fill_user(user, placeholder)?;
            }
            ActorSpec::User(user) => {
                let Some(UserField::Email(email)) = user.user.clone() else {
                    let Some(role) = &user.role else {
                        return Err(ActorError::NeitherUserNorRole(name.to_owned()));
                    };
                    actor.db_role = role.clone();
                    actor.kind = match role.as_str() {
                        "anon" => ActorKind::Anon,
                        "service_role" => ActorKind::ServiceRole,
                        _ => ActorKind::Custom,
                    };
                    let mut claims =
                        json!({ "iss": "supabase", "role": role, "iat": JWT_IAT, "exp": JWT_EXP });
                    merge(&mut claims, user.claims.as_ref());
                    actor.claims = claims;
                    return Ok(actor);
                };
                let id = match &user.id {
                    Some(id) => {
                        if !is_uuid(id) {
                            return Err(ActorError::NotAUuid {
                                actor: name.to_owned(),
                                id: id.clone(),
                            });
                        }
                        id.to_lowercase()
                    }
                    None => deterministic_id(name),
                };
                let mut app_metadata = json!({ "provider": "email", "providers": ["email"] });
                merge(&mut app_metadata, user.app_metadata.as_ref());
                let mut user_metadata = json!({});
                merge(&mut user_metadata, user.user_metadata.as_ref());
                actor.fill_user(
                    user,
                    SeededUser {
                        id,
                        email: Some(email),
                        phone: user.phone.clone(),
                        app_metadata,
                        user_metadata,
                        is_anonymous: user.is_anonymous,
                    },
                )?;
            }
        }
        Ok(actor)
    }

    /// Binds an `existing` actor to its seeded row: id, email, phone, metadata and the
    /// claims GoTrue would issue for it.
    pub fn bind(&mut self, row: SeededUser) -> Result<(), ActorError> {
        let spec = self.spec.clone().unwrap_or_default();
        self.fill_user(&spec, row)
    }

    /// Makes the actor the signed-in user `row`, with the role, aal and extra claims of `user`.
    fn fill_user(&mut self, user: &UserSpec, row: SeededUser) -> Result<(), ActorError> {
        let name = self.name.clone();
        let aal = user.aal.clone().unwrap_or_else(|| "aal1".to_owned());
        if aal != "aal1" && aal != "aal2" {
            return Err(ActorError::Aal { actor: name, aal });
        }
        let SeededUser {
            id,
            email,
            phone,
            app_metadata,
            user_metadata,
            is_anonymous,
        } = row;
        self.kind = ActorKind::User;
        self.db_role = user
            .role
            .clone()
            .unwrap_or_else(|| "authenticated".to_owned());
        let amr_method = if aal == "aal2" { "totp" } else { "password" };
        let mut claims = json!({
            "aud": "authenticated",
            "exp": JWT_EXP,
            "iat": JWT_IAT,
            "iss": "http://127.0.0.1:54321/auth/v1",
            "sub": id,
            "email": email.clone().unwrap_or_default(),
            "phone": phone.clone().unwrap_or_default(),
            "app_metadata": app_metadata,
            "user_metadata": user_metadata,
            "role": self.db_role,
            "aal": aal,
            "amr": [{ "method": amr_method, "timestamp": JWT_IAT }],
            "session_id": deterministic_id(&format!("{name} session")),
            "is_anonymous": is_anonymous,
        });
        merge(&mut claims, user.claims.as_ref());
        self.id = Some(id);
        self.email = email;
        self.phone = phone;
        self.app_metadata = app_metadata;
        self.user_metadata = user_metadata;
        self.is_anonymous = is_anonymous;
        self.claims = claims;
        Ok(())
    }

    /// May this actor bypass row level security? Only service_role, as in Supabase.
    pub fn may_bypass_rls(&self) -> bool {
        self.kind == ActorKind::ServiceRole
    }

    /// The statements that make the current transaction run as this actor, as PostgREST does:
    /// `SET LOCAL ROLE`, `request.jwt.claims`, and the legacy per-claim settings that old
    /// `auth.uid()` definitions read. Meant to follow a `BEGIN`.
    pub fn impersonation_sql(&self) -> String {
        let mut sql = self.role_and_claims_sql();
        let legacy: Vec<String> = self
            .legacy_claims()
            .into_iter()
            .map(|(key, text)| {
                format!(
                    "set_config({}, {}, true)",
                    quote_literal(&format!("request.jwt.claim.{key}")),
                    quote_literal(&text)
                )
            })
            .collect();
        if !legacy.is_empty() {
            sql.push_str(&format!("\nselect {};", legacy.join(", ")));
        }
        sql
    }

    /// `SET LOCAL ROLE` and `request.jwt.claims`: the first two statements of
    /// [`Actor::impersonation_sql`].
    fn role_and_claims_sql(&self) -> String {
        format!(
            "set local role {};\nselect set_config('request.jwt.claims', {}, true);",
            crate::sql::quote_ident(&self.db_role),
            quote_literal(&self.claims.to_string())
        )
    }

    /// The claims as the legacy `request.jwt.claim.<name>` settings hold them: strings as
    /// they are, everything else as JSON text; nulls left out.
    pub fn legacy_claims(&self) -> Vec<(String, String)> {
        let Value::Object(map) = &self.claims else {
            return Vec::new();
        };
        map.iter()
            .filter_map(|(key, value)| match value {
                Value::Null => None,
                Value::String(s) => Some((key.clone(), s.clone())),
                other => Some((key.clone(), other.to_string())),
            })
            .collect()
    }

    /// [`Actor::impersonation_sql`] for people to read: the legacy per-claim settings (which
    /// repeat the claims one by one) are named in a comment instead of spelled out.
    pub fn impersonation_sql_for_display(&self) -> String {
        let mut text = self.role_and_claims_sql();
        if !self.legacy_claims().is_empty() {
            text.push_str("  -- and the legacy request.jwt.claim.<name> settings");
        }
        text
    }

    /// Checks the row of [`EFFECTIVE_ROLE_SQL`] read inside the impersonated transaction:
    /// never a superuser, never BYPASSRLS unless the actor is service_role.
    pub fn check_effective_role(
        &self,
        user: &str,
        superuser: bool,
        bypassrls: bool,
    ) -> Result<(), ActorError> {
        if user != self.db_role {
            return Err(ActorError::WrongRole {
                actor: self.name.clone(),
                role: self.db_role.clone(),
                user: user.to_owned(),
            });
        }
        if superuser {
            return Err(ActorError::Superuser {
                actor: self.name.clone(),
                user: user.to_owned(),
            });
        }
        if bypassrls && !self.may_bypass_rls() {
            return Err(ActorError::BypassRls {
                actor: self.name.clone(),
                user: user.to_owned(),
            });
        }
        Ok(())
    }

    /// The value of `{{name.field}}` in templates.
    fn field(&self, field: &str) -> Option<String> {
        match field {
            // Non-users get their deterministic id too, one no auth.users row has, so
            // "anon cannot insert a row for {{me.id}}" can be written.
            "id" => Some(
                self.id
                    .clone()
                    .unwrap_or_else(|| deterministic_id(&self.name)),
            ),
            "email" => self.email.clone(),
            "phone" => self.phone.clone(),
            "role" => Some(self.db_role.clone()),
            "name" => Some(self.name.clone()),
            _ => None,
        }
    }
}

/// One row: the session's role, whether it is a superuser, whether it bypasses RLS.
pub const EFFECTIVE_ROLE_SQL: &str = "select current_user::text, r.rolsuper, r.rolbypassrls \
     from pg_catalog.pg_roles r where r.rolname = current_user";

fn merge(target: &mut Value, extra: Option<&Value>) {
    if let (Value::Object(target), Some(Value::Object(extra))) = (target, extra) {
        for (key, value) in extra {
            target.insert(key.clone(), value.clone());
        }
    }
}

fn is_uuid(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    parts.iter().map(|p| p.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
        && parts
            .iter()
            .all(|p| p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The actors of one file, by name.
#[derive(Debug, Clone, Default)]
pub struct Actors {
    pub by_name: BTreeMap<String, Actor>,
}

impl Actors {
    /// Resolves every spec; the error names the actor.
    pub fn resolve(specs: &BTreeMap<String, ActorSpec>) -> Result<Actors, ActorError> {
        let mut by_name = BTreeMap::new();
        let mut emails: BTreeMap<String, String> = BTreeMap::new();
        for (name, spec) in specs {
            let actor = Actor::resolve(name, spec)?;
            if let Some(email) = actor.email.as_ref().filter(|e| !e.is_empty()) {
                if let Some(other) = emails.insert(email.to_lowercase(), name.clone()) {
                    return Err(ActorError::SameEmail {
                        first: other,
                        second: name.clone(),
                        email: email.clone(),
                    });
                }
            }
            by_name.insert(name.clone(), actor);
        }
        Ok(Actors { by_name })
    }

    pub fn get(&self, name: &str) -> Option<&Actor> {
        self.by_name.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    /// SQL run as admin that creates the `auth.users` and `auth.identities` rows of the user
    /// actors the way GoTrue signs a user up, so `on_auth_user_created` triggers fire.
    pub fn create_users_sql(&self) -> String {
        let mut sql = String::new();
        // A bound actor's row is the seed's: inserting it again is the duplicate key
        // `existing:` exists to avoid.
        for actor in self
            .by_name
            .values()
            .filter(|a| a.kind == ActorKind::User && a.existing.is_none())
        {
            let id = quote_literal(actor.id.as_deref().unwrap_or_default());
            let email = quote_literal(actor.email.as_deref().unwrap_or_default());
            let phone = actor
                .phone
                .as_deref()
                .map_or("null".to_owned(), quote_literal);
            sql.push_str(&format!(
                "insert into auth.users (instance_id, id, aud, role, email, encrypted_password, \
                 email_confirmed_at, phone, raw_app_meta_data, raw_user_meta_data, is_anonymous, \
                 created_at, updated_at, last_sign_in_at)\n  values ('00000000-0000-0000-0000-000000000000', {id}, \
                 'authenticated', 'authenticated', {email}, '', now(), {phone}, {}::jsonb, {}::jsonb, {}, now(), now(), now());\n",
                quote_literal(&actor.app_metadata.to_string()),
                quote_literal(&actor.user_metadata.to_string()),
                actor.is_anonymous,
            ));
            sql.push_str(&format!(
                "insert into auth.identities (provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at)\n  \
                 values ({id}, {id}, jsonb_build_object('sub', {id}, 'email', {email}, 'email_verified', true), 'email', now(), now(), now());\n"
            ));
        }
        sql
    }

    /// Replaces `{{actor.field}}` (`id`, `email`, `phone`, `role`, `name`) in `text`; other
    /// `{{…}}` placeholders (a property's pools) are left alone. The error names the
    /// placeholder.
    pub fn render(&self, text: &str) -> Result<String, ActorError> {
        static PATTERN: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
        let pattern = PATTERN.get_or_init(|| {
            regex::Regex::new(r"\{\{\s*([A-Za-z_][\w-]*)\.([A-Za-z_]\w*)\s*\}\}").unwrap()
        });
        let mut error = None;
        let rendered = pattern.replace_all(text, |caps: &regex::Captures| {
            let (name, field) = (&caps[1], &caps[2]);
            match self.get(name) {
                None => {
                    error.get_or_insert_with(|| ActorError::NoSuchActor {
                        actor: name.to_owned(),
                        field: field.to_owned(),
                        known: self.names().map(str::to_owned).collect(),
                    });
                    String::new()
                }
                Some(actor) => actor.field(field).unwrap_or_else(|| {
                    error.get_or_insert_with(|| ActorError::NoSuchField {
                        actor: name.to_owned(),
                        field: field.to_owned(),
                    });
                    String::new()
                }),
            }
        });
        match error {
            Some(error) => Err(error),
            None => Ok(rendered.into_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> BTreeMap<String, ActorSpec> {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn ids_are_deterministic_uuids() {
        let a = deterministic_id("alice");
        assert_eq!(a, deterministic_id("alice"));
        assert_ne!(a, deterministic_id("bob"));
        assert!(is_uuid(&a), "{a}");
    }

    #[test]
    fn shorthand_and_user_actors_resolve_with_supabase_claims() {
        let specs = parse(
            "anon: anon\nsvc: service_role\nalice: { user: alice@example.com, app_metadata: { role: admin }, aal: aal2 }\n",
        );
        let actors = Actors::resolve(&specs).unwrap();
        let alice = actors.get("alice").unwrap();
        assert_eq!(alice.kind, ActorKind::User);
        assert_eq!(alice.db_role, "authenticated");
        assert_eq!(alice.claims["sub"], deterministic_id("alice"));
        assert_eq!(alice.claims["app_metadata"]["role"], "admin");
        assert_eq!(alice.claims["app_metadata"]["provider"], "email");
        assert_eq!(alice.claims["aal"], "aal2");
        assert_eq!(alice.claims["is_anonymous"], false);
        assert_eq!(actors.get("anon").unwrap().kind, ActorKind::Anon);
        assert!(actors.get("svc").unwrap().may_bypass_rls());
        assert!(!alice.may_bypass_rls());
        let sql = alice.impersonation_sql();
        assert!(
            sql.starts_with("set local role \"authenticated\";"),
            "{sql}"
        );
        assert!(sql.contains("'request.jwt.claim.sub'"), "{sql}");
        assert!(sql.contains("'request.jwt.claims'"), "{sql}");
    }

    #[test]
    fn unknown_keys_and_bare_authenticated_are_rejected() {
        let err = serde_saphyr::from_str::<BTreeMap<String, ActorSpec>>("a: { usr: x@y.z }\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("usr"), "{err}");
        let err = Actors::resolve(&parse("a: authenticated\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("user:"), "{err}");
    }

    #[test]
    fn templates_fill_actor_fields_and_leave_pools_alone() {
        let actors = Actors::resolve(&parse("alice: { user: alice@example.com }\n")).unwrap();
        let text = actors
            .render("id = '{{alice.id}}' and email = '{{ alice.email }}' and x = {{pool}}")
            .unwrap();
        assert_eq!(
            text,
            format!(
                "id = '{}' and email = 'alice@example.com' and x = {{{{pool}}}}",
                deterministic_id("alice")
            )
        );
        let err = actors.render("{{bob.id}}").unwrap_err().to_string();
        assert!(err.contains("bob") && err.contains("alice"), "{err}");
    }

    #[test]
    fn existing_actors_insert_nothing_and_take_their_claims_from_the_row() {
        let specs = parse(
            "alice: { existing: alice@example.com, aal: aal2 }\ncarol: { user: { id: 00000000-0000-4000-8000-0000000000CC }, claims: { tier: gold } }\nbob: { user: bob@example.com }\n",
        );
        let mut actors = Actors::resolve(&specs).unwrap();
        let sql = actors.create_users_sql();
        assert!(sql.contains("bob@example.com"), "{sql}");
        assert!(
            !sql.contains("alice@example.com") && !sql.contains("0000000000cc"),
            "{sql}"
        );
        let carol = actors.by_name.get_mut("carol").unwrap();
        assert_eq!(
            carol.existing,
            Some(Existing::Id(
                "00000000-0000-4000-8000-0000000000cc".to_owned()
            ))
        );
        assert_eq!(
            carol.id.as_deref(),
            Some("00000000-0000-4000-8000-0000000000cc")
        );
        carol
            .bind(SeededUser {
                id: "00000000-0000-4000-8000-0000000000cc".to_owned(),
                email: Some("carol@example.com".to_owned()),
                phone: None,
                app_metadata: json!({ "role": "admin" }),
                user_metadata: json!({ "name": "Carol" }),
                is_anonymous: false,
            })
            .unwrap();
        assert_eq!(carol.claims["app_metadata"], json!({ "role": "admin" }));
        assert_eq!(carol.claims["email"], "carol@example.com");
        assert_eq!(carol.claims["tier"], "gold");
        assert_eq!(carol.db_role, "authenticated");
        let alice = actors.get("alice").unwrap();
        assert_eq!(
            alice.existing,
            Some(Existing::Email("alice@example.com".to_owned()))
        );
        assert_eq!(alice.claims["aal"], "aal2");
        // Templates are checked before binding.
        assert!(actors
            .render("{{carol.email}} {{alice.id}} {{alice.phone}}")
            .is_ok());
        for (bad, says) in [
            (
                "a: { existing: a@x.io, app_metadata: { role: admin } }\n",
                "`app_metadata` comes from the seeded user",
            ),
            ("a: { existing: a@x.io, user: a@x.io }\n", "not both"),
            ("a: { user: { id: nope } }\n", "not a uuid"),
        ] {
            let err = Actors::resolve(&parse(bad)).unwrap_err().to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
        let err = serde_saphyr::from_str::<BTreeMap<String, ActorSpec>>(
            "a: { user: { email: a@x.io } }\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("email"), "{err}");
    }

    #[test]
    fn effective_role_check_refuses_superusers_and_bypassrls() {
        let actors =
            Actors::resolve(&parse("alice: { user: a@x.io }\nsvc: service_role\n")).unwrap();
        let alice = actors.get("alice").unwrap();
        assert!(alice
            .check_effective_role("authenticated", false, false)
            .is_ok());
        assert!(alice
            .check_effective_role("authenticated", true, false)
            .is_err());
        assert!(alice
            .check_effective_role("authenticated", false, true)
            .is_err());
        assert!(alice
            .check_effective_role("postgres", false, false)
            .is_err());
        let svc = actors.get("svc").unwrap();
        assert!(svc
            .check_effective_role("service_role", false, true)
            .is_ok());
    }
}
