{{/*
Shared named templates. Every object template loops over the two services with
`include "tributary.components" .` and calls these with a context made by
`tributary.ctx`: {root: $, name: "registry"|"messaging", c: .Values.<name>}.
*/}}

{{- define "tributary.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tributary.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* The enabled services, as a JSON list of names (use with fromJsonArray). */}}
{{- define "tributary.components" -}}
{{- $names := list }}
{{- range $name := list "registry" "messaging" }}
{{- if (index $.Values $name).enabled }}
{{- $names = append $names $name }}
{{- end }}
{{- end }}
{{- toJson $names }}
{{- end }}

{{/* Object name of a service's objects: <fullname>-<service>. Context: ctx. */}}
{{- define "tributary.componentName" -}}
{{- printf "%s-%s" (include "tributary.fullname" .root | trunc 52 | trimSuffix "-") .name }}
{{- end }}

{{/* The `job` label the dashboard and alerts select on. Context: ctx. */}}
{{- define "tributary.jobName" -}}
{{- printf "tributary-%s" .name }}
{{- end }}

{{- define "tributary.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tributary.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{- define "tributary.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "tributary.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: tributary
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "tributary.image" -}}
{{- $image := .c.image }}
{{- if $image.digest }}
{{- printf "%s@%s" $image.repository $image.digest }}
{{- else }}
{{- printf "%s:%s" $image.repository (default .root.Chart.AppVersion $image.tag) }}
{{- end }}
{{- end }}

{{/*
terminationGracePeriodSeconds: the preStop sleep, then the service's drain
(shutdownTimeoutMs, rounded up to whole seconds), then a margin. Context: ctx.
*/}}
{{- define "tributary.terminationGracePeriodSeconds" -}}
{{- $v := .root.Values }}
{{- $drain := div (add (int64 .c.shutdownTimeoutMs) 999) 1000 }}
{{- add (int64 $v.preStopSleepSeconds) $drain (int64 $v.terminationGraceMarginSeconds) }}
{{- end }}

{{/* The registry's gRPC URL as messaging sees it. */}}
{{- define "tributary.registryUrl" -}}
{{- $v := .Values }}
{{- if $v.messaging.registryUrl }}
{{- $v.messaging.registryUrl }}
{{- else if $v.registry.enabled }}
{{- printf "http://%s:%v" (include "tributary.componentName" (dict "root" . "name" "registry")) $v.registry.service.grpcPort }}
{{- else }}
{{- fail "messaging.registryUrl is required when registry.enabled is false" }}
{{- end }}
{{- end }}

{{/*
The ConfigMap data of a service: every non-secret setting, as the environment variables the
service reads (see the project README's configuration tables). Context: ctx.
*/}}
{{- define "tributary.configData" -}}
{{- $v := .root.Values }}
{{- $c := .c }}
{{- $env := dict }}
{{- if eq .name "registry" }}
{{- $_ := set $env "REGISTRY_GRPC_ADDR" (printf "0.0.0.0:%v" $c.service.grpcPort) }}
{{- $_ := set $env "REGISTRY_HTTP_ADDR" (printf "0.0.0.0:%v" $c.service.httpPort) }}
{{- $_ := set $env "REGISTRY_METRICS_ADDR" (printf "0.0.0.0:%v" $c.service.metricsPort) }}
{{- $_ := set $env "REGISTRY_DB_MAX_CONNECTIONS" (toString (int64 $c.database.maxConnections)) }}
{{- $_ := set $env "REGISTRY_DB_ACQUIRE_TIMEOUT_MS" (toString (int64 $c.database.acquireTimeoutMs)) }}
{{- $_ := set $env "REGISTRY_MAX_SCHEMA_BYTES" (toString (int64 $c.maxSchemaBytes)) }}
{{- $_ := set $env "REGISTRY_SHUTDOWN_TIMEOUT_MS" (toString (int64 $c.shutdownTimeoutMs)) }}
{{- else }}
{{- $_ := set $env "MESSAGING_GRPC_ADDR" (printf "0.0.0.0:%v" $c.service.grpcPort) }}
{{- $_ := set $env "MESSAGING_METRICS_ADDR" (printf "0.0.0.0:%v" $c.service.metricsPort) }}
{{- $_ := set $env "KAFKA_BOOTSTRAP_SERVERS" $c.kafka.bootstrapServers }}
{{- $_ := set $env "REGISTRY_URL" (include "tributary.registryUrl" .root) }}
{{- $_ := set $env "MESSAGING_LATEST_SCHEMA_TTL_MS" (toString (int64 $c.latestSchemaTtlMs)) }}
{{- $_ := set $env "MESSAGING_KAFKA_TIMEOUT_MS" (toString (int64 $c.kafkaTimeoutMs)) }}
{{- $_ := set $env "MESSAGING_PRODUCE_MAX_IN_FLIGHT" (toString (int64 $c.produceMaxInFlight)) }}
{{- $_ := set $env "MESSAGING_SHUTDOWN_TIMEOUT_MS" (toString (int64 $c.shutdownTimeoutMs)) }}
{{- end }}
{{- $_ := set $env "LOG_FORMAT" $v.logFormat }}
{{- $_ := set $env "RUST_LOG" $v.logLevel }}
{{- $_ := set $env "OTEL_SERVICE_NAME" (printf "tributary-%s" .name) }}
{{- with $v.otel.endpoint }}{{ $_ := set $env "OTEL_EXPORTER_OTLP_ENDPOINT" . }}{{ end }}
{{- with $v.otel.tracesSampler }}{{ $_ := set $env "OTEL_TRACES_SAMPLER" . }}{{ end }}
{{- with $v.otel.tracesSamplerArg }}{{ $_ := set $env "OTEL_TRACES_SAMPLER_ARG" (toString .) }}{{ end }}
{{- range $key, $value := $v.otel.extraEnv }}
{{- if not (hasPrefix "OTEL_" $key) }}
{{- fail (printf "otel.extraEnv.%s: only OTEL_* variables belong here (use <service>.extraConfig)" $key) }}
{{- end }}
{{- $_ := set $env $key (toString $value) }}
{{- end }}
{{- range $key, $value := $c.extraConfig }}
{{- $_ := set $env $key (toString $value) }}
{{- end }}
{{- range $key := keys $env | sortAlpha }}
{{ $key }}: {{ get $env $key | quote }}
{{- end }}
{{- end }}

{{/*
A liveness/readiness/startup probe on the gRPC health service. Args: list of ctx, the probe's
values, the health service name.
*/}}
{{- define "tributary.grpcProbe" -}}
{{- $ctx := index . 0 }}
{{- $probe := index . 1 }}
grpc:
  port: {{ $ctx.c.service.grpcPort }}
  service: {{ index . 2 | quote }}
{{ toYaml $probe }}
{{- end }}
