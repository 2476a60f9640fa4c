//! Redshift audit object keys and prefixes: parse, validate, decode.
