//! gRPC server reflection, v1 and v1alpha (grpcurl 1.8 only speaks v1alpha), advertising only
//! the services the process really serves: the descriptor set holds every tributary API, and
//! without a list `grpcurl list` on the registry would offer the messaging service too.

use tonic_reflection::server::{Builder, Error, v1, v1alpha};

/// The services every tributary process serves besides its API.
const STANDARD_SERVICES: [&str; 3] = [
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

fn builder(api_service: &str) -> Builder<'static> {
    [api_service].into_iter().chain(STANDARD_SERVICES).fold(
        Builder::configure()
            .register_encoded_file_descriptor_set(tributary_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET),
        Builder::with_service_name,
    )
}

/// The v1 and v1alpha reflection services for a process serving `api_service` (its full name,
/// e.g. `tributary.registry.v1.RegistryService`), health and reflection.
#[allow(clippy::type_complexity)]
pub fn services(
    api_service: &str,
) -> Result<
    (
        v1::ServerReflectionServer<impl v1::ServerReflection>,
        v1alpha::ServerReflectionServer<impl v1alpha::ServerReflection>,
    ),
    Error,
> {
    Ok((
        builder(api_service).build_v1()?,
        builder(api_service).build_v1alpha()?,
    ))
}
