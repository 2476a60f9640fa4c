//! The session index in the state store (the Lambda).
