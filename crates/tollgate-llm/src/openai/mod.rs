//! OpenAI's API: requests to `/v1/chat/completions`, `/v1/responses` and `/v1/embeddings`,
//! their responses and their streams.

mod caller;
pub mod chat;
mod request;
pub mod responses;
mod stream;
mod usage;

pub use request::{InspectedRequest, OutputCap, Rewrite};
pub use stream::ChatStream;
pub use usage::usage_of_response;
