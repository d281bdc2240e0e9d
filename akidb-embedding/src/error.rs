//! The error type of the embedding layer: [`EmbedError`] of the contract crate
//! (`akidb-embed-api`), with helpers that box the errors of ONNX Runtime and its neighbours.

pub use akidb_embed_api::EmbedError;

pub(crate) fn ort_err<E: Into<ort::Error>>(context: &'static str) -> impl FnOnce(E) -> EmbedError {
    move |e| EmbedError::Ort { context, source: Box::new(e.into()) }
}
