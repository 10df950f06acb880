//! The gRPC server: every floorwatch service plus standard health and
//! reflection, so generic clients work without the protos.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;

use super::adherence::AdherenceApi;
use super::floor::FloorApi;
use super::ingest::IngestApi;
use super::roster::RosterApi;
use super::state::ApiState;
use crate::proto;

/// Largest gRPC message accepted, in bytes; a 10 000-event ingest batch is
/// well below it.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// Serves the API on `listener` until `shutdown` is cancelled; open streams
/// end with UNAVAILABLE first.
pub async fn serve(
    listener: TcpListener,
    state: Arc<ApiState>,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<proto::floor_service_server::FloorServiceServer<FloorApi>>().await;
    health_reporter.set_serving::<proto::adherence_service_server::AdherenceServiceServer<AdherenceApi>>().await;
    health_reporter.set_serving::<proto::roster_service_server::RosterServiceServer<RosterApi>>().await;
    health_reporter.set_serving::<proto::ingest_service_server::IngestServiceServer<IngestApi>>().await;

    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .expect("the embedded descriptor sets must be valid");

    let floor = proto::floor_service_server::FloorServiceServer::new(FloorApi::new(state.clone()));
    let adherence = proto::adherence_service_server::AdherenceServiceServer::new(AdherenceApi::new(state.clone()));
    let roster = proto::roster_service_server::RosterServiceServer::new(RosterApi::new(state.clone()))
        .max_decoding_message_size(MAX_MESSAGE_BYTES);
    let ingest = proto::ingest_service_server::IngestServiceServer::new(IngestApi::new(state.clone()))
        .max_decoding_message_size(MAX_MESSAGE_BYTES);

    Server::builder()
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
        .add_service(health_service)
        .add_service(reflection)
        .add_service(floor)
        .add_service(adherence)
        .add_service(roster)
        .add_service(ingest)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown.cancelled_owned())
        .await
}
