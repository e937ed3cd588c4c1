//! OpenAI's API: requests to `/v1/chat/completions` and `/v1/embeddings`, their responses
//! and their streams.

pub mod chat;
mod request;
mod stream;
mod usage;

pub use request::{InspectedRequest, OutputCap, Rewrite};
pub use stream::ChatStream;
pub use usage::usage_of_response;
