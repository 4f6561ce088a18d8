//! `grpc.health.v1` with the statuses every tributary service reports:
//!
//! - `""` and the API service's name: readiness, SERVING only while the service says it is
//!   ready (all its dependencies up) and it is not shutting down;
//! - `liveness`: SERVING from the start until shutdown begins, whatever the dependencies do;
//! - `dependency.<name>` per dependency: SERVING while that dependency answers.
//!
//! The same state feeds the `tributary_ready` and `tributary_dependency_up{dependency}` gauges.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::KeyValue;
use opentelemetry::metrics::Meter;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

/// The liveness service name.
pub const LIVENESS: &str = "liveness";

#[derive(Debug)]
struct Dependency {
    name: &'static str,
    service: String,
    up: AtomicBool,
}

/// A service's health, shared by its watchers and its health service.
#[derive(Debug)]
pub struct Health {
    reporter: HealthReporter,
    api_service: &'static str,
    dependencies: Vec<Dependency>,
    ready: AtomicBool,
    shutting_down: AtomicBool,
}

fn status(serving: bool) -> ServingStatus {
    if serving {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    }
}

impl Health {
    /// Health for the API service `api_service` depending on `dependencies`; everything starts
    /// NOT_SERVING except liveness, SERVING.
    pub async fn new(
        api_service: &'static str,
        dependencies: &[&'static str],
    ) -> (
        Arc<Self>,
        tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
    ) {
        let (reporter, service) = tonic_health::server::health_reporter();
        let health = Arc::new(Self {
            reporter,
            api_service,
            dependencies: dependencies
                .iter()
                .map(|name| Dependency {
                    name,
                    service: format!("dependency.{name}"),
                    up: AtomicBool::new(false),
                })
                .collect(),
            ready: AtomicBool::new(false),
            shutting_down: AtomicBool::new(false),
        });
        health.publish_readiness(false).await;
        for dependency in &health.dependencies {
            health
                .reporter
                .set_service_status(&dependency.service, ServingStatus::NotServing)
                .await;
        }
        health
            .reporter
            .set_service_status(LIVENESS, ServingStatus::Serving)
            .await;
        (health, service)
    }

    async fn publish_readiness(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
        self.reporter
            .set_service_status(self.api_service, status(ready))
            .await;
        self.reporter.set_service_status("", status(ready)).await;
    }

    /// Records whether a dependency answers (the health service hears of changes only).
    pub async fn set_dependency(&self, name: &str, up: bool) {
        if let Some(dependency) = self.dependencies.iter().find(|d| d.name == name)
            && dependency.up.swap(up, Ordering::Relaxed) != up
        {
            self.reporter
                .set_service_status(&dependency.service, status(up))
                .await;
        }
    }

    /// Sets readiness (ignored once shutdown began).
    pub async fn set_ready(&self, ready: bool) {
        if !self.shutting_down.load(Ordering::Relaxed) {
            self.publish_readiness(ready).await;
        }
    }

    /// Whether readiness is SERVING.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Whether liveness is SERVING (until shutdown begins).
    pub fn is_live(&self) -> bool {
        !self.shutting_down.load(Ordering::Relaxed)
    }

    /// Shutdown began: readiness and liveness go NOT_SERVING for good.
    pub async fn shutting_down(&self) {
        self.shutting_down.store(true, Ordering::Relaxed);
        self.publish_readiness(false).await;
        self.reporter
            .set_service_status(LIVENESS, ServingStatus::NotServing)
            .await;
    }

    /// Registers `tributary.ready` and `tributary.dependency.up` on `meter`.
    pub fn register_gauges(self: &Arc<Self>, meter: &Meter) {
        let health = Arc::clone(self);
        meter
            .u64_observable_gauge("tributary.ready")
            .with_description("1 while the service reports SERVING for readiness (\"\"), else 0")
            .with_callback(move |observer| observer.observe(u64::from(health.is_ready()), &[]))
            .build();
        let health = Arc::clone(self);
        let labels: Vec<KeyValue> = self
            .dependencies
            .iter()
            .map(|d| KeyValue::new("dependency", d.name))
            .collect();
        meter
            .u64_observable_gauge("tributary.dependency.up")
            .with_description("1 while the dependency answers, else 0")
            .with_callback(move |observer| {
                for (dependency, label) in health.dependencies.iter().zip(&labels) {
                    observer.observe(
                        u64::from(dependency.up.load(Ordering::Relaxed)),
                        std::slice::from_ref(label),
                    );
                }
            })
            .build();
    }
}
