//! Typed columns over text: [`Text`] holds a domain value with one name per variant (a state,
//! a kind: [`StrEnum`]) and [`JsonText`] a value kept as JSON text. Both are stored as TEXT
//! exactly as before (the schema and existing rows do not change); reading a row that does not
//! parse is an error naming the value, never a panic and never a default.
//!
//! The domain crate knows nothing of sea-orm, so these wrappers, not the domain's types, carry
//! the sea-orm traits: one implementation for every such type.

use changegate_domain::StrEnum;
use sea_orm::sea_query::{ArrayType, ColumnType, Nullable, ValueType, ValueTypeErr};
use sea_orm::{ColIdx, DbErr, QueryResult, TryGetError, TryGetable, Value};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::ops::Deref;

/// A [`StrEnum`] value in a TEXT column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Text<T>(pub T);

impl<T> Deref for Text<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: StrEnum> std::fmt::Display for Text<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.name())
    }
}

impl<T: StrEnum> From<T> for Text<T> {
    fn from(v: T) -> Self {
        Text(v)
    }
}

impl<T: StrEnum> From<Text<T>> for Value {
    fn from(v: Text<T>) -> Self {
        Value::String(Some(v.0.name().to_owned()))
    }
}

impl<T: StrEnum> TryGetable for Text<T> {
    fn try_get_by<I: ColIdx>(res: &QueryResult, idx: I) -> Result<Self, TryGetError> {
        let s = String::try_get_by(res, idx)?;
        T::from_name(&s)
            .map(Text)
            .map_err(|e| TryGetError::DbErr(DbErr::Type(format!("stored {e}"))))
    }
}

impl<T: StrEnum> ValueType for Text<T> {
    fn try_from(v: Value) -> Result<Self, ValueTypeErr> {
        let s = <String as ValueType>::try_from(v)?;
        T::from_name(&s).map(Text).map_err(|_| ValueTypeErr)
    }
    fn type_name() -> String {
        std::any::type_name::<T>().to_owned()
    }
    fn array_type() -> ArrayType {
        ArrayType::String
    }
    fn column_type() -> ColumnType {
        <String as ValueType>::column_type()
    }
}

impl<T: StrEnum> Nullable for Text<T> {
    fn null() -> Value {
        Value::String(None)
    }
}

/// A value kept as JSON text (a list of environments, of editors…). Written with
/// `serde_json::to_string`, as the rows were always written.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(transparent)]
pub struct JsonText<T>(pub T);

impl<T> Deref for JsonText<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Serialize> From<JsonText<T>> for Value {
    fn from(v: JsonText<T>) -> Self {
        // Serialising plain data (strings, numbers, lists, maps with string keys) cannot fail.
        Value::String(Some(
            serde_json::to_string(&v.0).unwrap_or_else(|_| "null".to_owned()),
        ))
    }
}

impl<T: DeserializeOwned> TryGetable for JsonText<T> {
    fn try_get_by<I: ColIdx>(res: &QueryResult, idx: I) -> Result<Self, TryGetError> {
        let s = String::try_get_by(res, idx)?;
        serde_json::from_str(&s)
            .map(JsonText)
            .map_err(|e| TryGetError::DbErr(DbErr::Json(format!("stored JSON text: {e}"))))
    }
}

impl<T: DeserializeOwned> ValueType for JsonText<T> {
    fn try_from(v: Value) -> Result<Self, ValueTypeErr> {
        let s = <String as ValueType>::try_from(v)?;
        serde_json::from_str(&s)
            .map(JsonText)
            .map_err(|_| ValueTypeErr)
    }
    fn type_name() -> String {
        format!("JsonText<{}>", std::any::type_name::<T>())
    }
    fn array_type() -> ArrayType {
        ArrayType::String
    }
    fn column_type() -> ColumnType {
        <String as ValueType>::column_type()
    }
}

impl<T> Nullable for JsonText<T> {
    fn null() -> Value {
        Value::String(None)
    }
}
