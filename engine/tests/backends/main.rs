//! The engine's tests on the real default model, in one test binary: every test that runs on
//! both backends (`on_both_backends!`: in process, on llama-server, on vLLM) and the servers'
//! differences. One binary links llama.cpp once and starts one shared vLLM server
//! (`start_tests::vllm::VllmServer::shared`) for all of them.

#[macro_use]
mod common;

mod data;
mod hints;
mod model;
mod same_rows;
mod servers;
