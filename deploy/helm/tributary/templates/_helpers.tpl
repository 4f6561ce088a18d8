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

{{/* The registry's gRPC URL as messaging sees it: https with the release's certificate. */}}
{{- define "tributary.registryUrl" -}}
{{- $v := .Values }}
{{- if $v.messaging.registryUrl }}
{{- $v.messaging.registryUrl }}
{{- else if $v.registry.enabled }}
{{- $svc := include "tributary.componentName" (dict "root" . "name" "registry") }}
{{- if $v.tls.enabled }}
{{- printf "https://%s.%s.svc:%v" $svc .Release.Namespace $v.registry.service.grpcPort }}
{{- else }}
{{- printf "http://%s:%v" $svc $v.registry.service.grpcPort }}
{{- end }}
{{- else }}
{{- fail "messaging.registryUrl is required when registry.enabled is false" }}
{{- end }}
{{- end }}

{{/* "true" when messaging talks to this release's registry. Context: root. */}}
{{- define "tributary.inReleaseRegistry" -}}
{{- and (not .Values.messaging.registryUrl) .Values.registry.enabled | toString }}
{{- end }}

{{/* Name of a release-wide object: <fullname>-<suffix>. Args: list of root, suffix. */}}
{{- define "tributary.objectName" -}}
{{- printf "%s-%s" (include "tributary.fullname" (index . 0) | trunc 52 | trimSuffix "-") (index . 1) }}
{{- end }}

{{/* The Secret with the services' certificate (tls.crt, tls.key, ca.crt). Context: root. */}}
{{- define "tributary.tlsSecretName" -}}
{{- $tls := .Values.tls }}
{{- if eq $tls.source "secret" }}
{{- required "tls.secretName is required with tls.source=secret" $tls.secretName }}
{{- else }}
{{- default (include "tributary.objectName" (list . "tls")) $tls.secretName }}
{{- end }}
{{- end }}

{{/* tls.clientAuth as off|optional|required (YAML's bare `off` is false). Context: root. */}}
{{- define "tributary.clientAuth" -}}
{{- $mode := .Values.tls.clientAuth }}
{{- if or (kindIs "bool" $mode) (not $mode) }}off{{ else }}{{ $mode }}{{ end }}
{{- end }}

{{/*
How messaging authenticates to the registry (messaging.registryAuth.method, `auto` resolved):
basic, bearer, mtls or none. Context: root.
*/}}
{{- define "tributary.registryAuthMethod" -}}
{{- $method := .Values.messaging.registryAuth.method }}
{{- $methods := .Values.auth.methods }}
{{- if ne $method "auto" }}{{ $method }}
{{- else if has "none" $methods }}none
{{- else if has "basic" $methods }}basic
{{- else if has "mtls" $methods }}mtls
{{- else }}bearer
{{- end }}
{{- end }}

{{/* "true" when the chart generates the users file (basic without auth.users.existingSecret). */}}
{{- define "tributary.generatedUsers" -}}
{{- and (has "basic" .Values.auth.methods) (not .Values.auth.users.existingSecret) | toString }}
{{- end }}

{{/* "true" when the chart generates messaging's registry password (in the generated users). */}}
{{- define "tributary.generatedMessagingPassword" -}}
{{- $v := .Values }}
{{- and $v.messaging.enabled (eq (include "tributary.generatedUsers" .) "true") (eq (include "tributary.registryAuthMethod" .) "basic") (not $v.messaging.registryAuth.existingSecret) | toString }}
{{- end }}

{{/* "true" when the chart provides messaging's client certificate (generated CA or cert-manager). */}}
{{- define "tributary.chartClientCert" -}}
{{- $v := .Values }}
{{- and $v.messaging.enabled $v.tls.enabled (eq (include "tributary.registryAuthMethod" .) "mtls") (not $v.messaging.registryAuth.existingSecret) (has $v.tls.source (list "generated" "certManager")) | toString }}
{{- end }}

{{/*
How the services authorize: "policy" (a policy file) or "none" (every authenticated principal may
do everything: authz.enabled false, or no authentication at all). Context: root.
*/}}
{{- define "tributary.authzMode" -}}
{{- if and .Values.authz.enabled (not (has "none" .Values.auth.methods)) }}policy{{ else }}none{{ end }}
{{- end }}

{{/* "true" when the chart renders the policy (authz on, neither existingConfigMap nor existingSecret). */}}
{{- define "tributary.generatedPolicy" -}}
{{- $p := .Values.authz.policy }}
{{- and (eq (include "tributary.authzMode" .) "policy") (not $p.existingConfigMap) (not $p.existingSecret) | toString }}
{{- end }}

{{/*
The principal of messaging's own registry identity, for the generated policy: the user name
(basic, bearer) or the client certificate's name (mtls); empty when messaging does not call this
release's registry with credentials. Context: root.
*/}}
{{- define "tributary.messagingPrincipal" -}}
{{- $v := .Values }}
{{- if and $v.messaging.enabled (eq (include "tributary.inReleaseRegistry" .) "true") (ne (include "tributary.registryAuthMethod" .) "none") }}
{{- printf "user:%s" $v.messaging.registryAuth.username }}
{{- end }}
{{- end }}

{{/* The DNS names of the server certificate: every enabled service's in-cluster names. */}}
{{- define "tributary.dnsNames" -}}
{{- $names := list }}
{{- range $name := include "tributary.components" . | fromJsonArray }}
{{- $svc := include "tributary.componentName" (dict "root" $ "name" $name) }}
{{- $names = concat $names (list $svc (printf "%s.%s" $svc $.Release.Namespace) (printf "%s.%s.svc" $svc $.Release.Namespace) (printf "%s.%s.svc.%s" $svc $.Release.Namespace $.Values.clusterDomain)) }}
{{- end }}
{{- concat $names $.Values.tls.extraDnsNames | uniq | toJson }}
{{- end }}

{{/*
Combinations of values that cannot work, refused at install/template time with what to change.
Context: root. Renders nothing.
*/}}
{{- define "tributary.validate" -}}
{{- $v := .Values }}
{{- $tls := $v.tls }}
{{- $methods := $v.auth.methods }}
{{- $clientAuth := include "tributary.clientAuth" . }}
{{- if and (has "none" $methods) (gt (len $methods) 1) }}
{{- fail "auth.methods: `none` cannot be combined with other methods" }}
{{- end }}
{{- if and $v.metrics.tls (not $tls.enabled) }}
{{- fail "metrics.tls needs tls.enabled (it serves the metrics port with the services' certificate)" }}
{{- end }}
{{- if and (ne $clientAuth "off") (not $tls.enabled) }}
{{- fail (printf "tls.clientAuth=%s needs tls.enabled" $clientAuth) }}
{{- end }}
{{- if and (has "mtls" $methods) (eq $clientAuth "off") }}
{{- fail "auth.methods mtls needs tls.clientAuth optional or required (and tls.enabled)" }}
{{- end }}
{{- if and $tls.enabled (eq $tls.source "certManager") (not $tls.certManager.issuerRef.name) }}
{{- fail "tls.certManager.issuerRef.name is required with tls.source=certManager" }}
{{- end }}
{{- if and $tls.enabled (eq $tls.source "secret") (not $tls.secretName) }}
{{- fail "tls.secretName is required with tls.source=secret" }}
{{- end }}
{{- if has "jwt" $methods }}
{{- $jwt := $v.auth.jwt }}
{{- if not (and $jwt.issuer $jwt.audience) }}
{{- fail "auth.methods jwt needs auth.jwt.issuer and auth.jwt.audience" }}
{{- end }}
{{- $sources := 0 }}
{{- range list $jwt.jwksUrl $jwt.jwksConfigMap $jwt.jwksSecret }}{{ if . }}{{ $sources = add1 $sources }}{{ end }}{{ end }}
{{- if ne (int $sources) 1 }}
{{- fail "auth.methods jwt needs exactly one of auth.jwt.jwksUrl, auth.jwt.jwksConfigMap, auth.jwt.jwksSecret" }}
{{- end }}
{{- if and $jwt.jwksUrl (not (hasPrefix "https://" $jwt.jwksUrl)) }}
{{- fail "auth.jwt.jwksUrl must be an https URL" }}
{{- end }}
{{- end }}
{{- $policy := $v.authz.policy }}
{{- if and $policy.existingConfigMap $policy.existingSecret }}
{{- fail "authz.policy: give existingConfigMap or existingSecret, not both" }}
{{- end }}
{{- if and (or $policy.existingConfigMap $policy.existingSecret) (ne (include "tributary.authzMode" .) "policy") }}
{{- fail (printf "authz.policy.existing%s is given, but authorization is off (%s): drop it or turn authz on" (ternary "ConfigMap" "Secret" (not (empty $policy.existingConfigMap))) (ternary "auth.methods is [none]: no principals to authorize" "authz.enabled is false" (has "none" $methods))) }}
{{- end }}
{{- if $v.messaging.enabled }}
{{- $ra := $v.messaging.registryAuth }}
{{- $method := include "tributary.registryAuthMethod" . }}
{{- $inRelease := eq (include "tributary.inReleaseRegistry" .) "true" }}
{{- $kafka := $v.messaging.kafka }}
{{- if and $kafka.existingSecret (not (or $kafka.propertiesFileKey $kafka.saslPasswordKey)) }}
{{- fail "messaging.kafka.existingSecret needs messaging.kafka.propertiesFileKey and/or messaging.kafka.saslPasswordKey" }}
{{- end }}
{{- if and (or $kafka.propertiesFileKey $kafka.saslPasswordKey) (not $kafka.existingSecret) }}
{{- fail "messaging.kafka.propertiesFileKey / saslPasswordKey need messaging.kafka.existingSecret" }}
{{- end }}
{{- if $inRelease }}
{{- $accepted := dict "basic" "basic" "bearer" "jwt" "mtls" "mtls" }}
{{- if and (eq $method "none") (not (has "none" $methods)) }}
{{- fail (printf "messaging.registryAuth.method is none, but the registry asks for credentials (auth.methods %s)" (join "," $methods)) }}
{{- end }}
{{- if and (ne $method "none") (not (has (get $accepted $method) $methods)) (not (has "none" $methods)) }}
{{- fail (printf "messaging.registryAuth.method %s needs %s in auth.methods (they are %s)" $method (get $accepted $method) (join "," $methods)) }}
{{- end }}
{{- end }}
{{- if eq $method "basic" }}
{{- if and (not $ra.existingSecret) (ne (include "tributary.generatedUsers" .) "true") }}
{{- fail "messaging.registryAuth basic needs messaging.registryAuth.existingSecret (its password) unless the chart generates the users (auth.methods has basic, no auth.users.existingSecret)" }}
{{- end }}
{{- if and (not $ra.existingSecret) (not $inRelease) }}
{{- fail "messaging.registryAuth basic with messaging.registryUrl (a registry elsewhere) needs messaging.registryAuth.existingSecret with the password that registry knows" }}
{{- end }}
{{- if and $ra.existingSecret $inRelease (eq (include "tributary.generatedUsers" .) "true") }}
{{- fail "messaging.registryAuth.existingSecret: with the chart-generated users file the chart makes messaging's password too; leave it empty, or give auth.users.existingSecret" }}
{{- end }}
{{- else if eq $method "bearer" }}
{{- if not $ra.existingSecret }}
{{- fail "messaging.registryAuth bearer (the registry accepts jwt only) needs messaging.registryAuth.existingSecret with the token (key messaging.registryAuth.tokenKey)" }}
{{- end }}
{{- else if eq $method "mtls" }}
{{- if and (not $ra.existingSecret) (ne (include "tributary.chartClientCert" .) "true") }}
{{- fail "messaging.registryAuth mtls needs messaging.registryAuth.existingSecret (tls.crt, tls.key) unless tls.enabled with tls.source generated or certManager" }}
{{- end }}
{{- if and $inRelease (not $tls.enabled) }}
{{- fail "messaging.registryAuth mtls needs tls.enabled" }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
What a service's container gets for TLS, authentication and its secrets, as JSON:
  mounts: read-only volumes, each {name, path, secret|configMap, items: [{key, path}] (none: all keys)}
  env:    the variables naming those files and the non-secret security settings (for the ConfigMap)
The one place that knows the paths, so the ConfigMap and the Deployment agree. Context: ctx.
*/}}
{{- define "tributary.security" -}}
{{- $root := .root }}
{{- $v := $root.Values }}
{{- $c := .c }}
{{- $base := "/etc/tributary" }}
{{- $mounts := list }}
{{- $env := dict }}
{{- $clientAuth := include "tributary.clientAuth" $root }}
{{- $inRelease := eq (include "tributary.inReleaseRegistry" $root) "true" }}
{{- $registryUrl := "" }}
{{- if eq .name "messaging" }}{{ $registryUrl = include "tributary.registryUrl" $root }}{{ end }}
{{- /* server TLS */}}
{{- if $v.tls.enabled }}
{{- $_ := set $env "TLS" "on" }}
{{- $items := list (dict "key" "tls.crt" "path" "tls.crt") (dict "key" "tls.key" "path" "tls.key") }}
{{- $serverCA := or (and (ne $clientAuth "off") (not $v.tls.clientCASecret)) (and (eq .name "messaging") $inRelease (not $v.messaging.registryCAConfigMap)) }}
{{- if $serverCA }}
{{- $items = append $items (dict "key" "ca.crt" "path" "ca.crt") }}
{{- end }}
{{- $mounts = append $mounts (dict "name" "tls" "path" (printf "%s/tls" $base) "secret" (include "tributary.tlsSecretName" $root) "items" $items) }}
{{- $_ := set $env "TLS_CERT_FILE" (printf "%s/tls/tls.crt" $base) }}
{{- $_ := set $env "TLS_KEY_FILE" (printf "%s/tls/tls.key" $base) }}
{{- $_ := set $env "TLS_CLIENT_AUTH" $clientAuth }}
{{- if ne $clientAuth "off" }}
{{- if $v.tls.clientCASecret }}
{{- $mounts = append $mounts (dict "name" "client-ca" "path" (printf "%s/client-ca" $base) "secret" $v.tls.clientCASecret "items" (list (dict "key" "ca.crt" "path" "ca.crt"))) }}
{{- $_ := set $env "TLS_CLIENT_CA_FILE" (printf "%s/client-ca/ca.crt" $base) }}
{{- else }}
{{- $_ := set $env "TLS_CLIENT_CA_FILE" (printf "%s/tls/ca.crt" $base) }}
{{- end }}
{{- end }}
{{- $_ := set $env "METRICS_TLS" (ternary "on" "off" $v.metrics.tls) }}
{{- else }}
{{- $_ := set $env "TLS" "off" }}
{{- $_ := set $env "METRICS_TLS" "off" }}
{{- end }}
{{- /* authentication */}}
{{- $auth := $v.auth }}
{{- $_ := set $env "AUTH" (join "," $auth.methods) }}
{{- $_ := set $env "AUTH_OPEN" (default "none" (join "," $auth.open)) }}
{{- if has "basic" $auth.methods }}
{{- $secret := default (include "tributary.objectName" (list $root "users")) $auth.users.existingSecret }}
{{- $key := ternary $auth.users.key "users" (not (empty $auth.users.existingSecret)) }}
{{- $mounts = append $mounts (dict "name" "users" "path" (printf "%s/users" $base) "secret" $secret "items" (list (dict "key" $key "path" "users"))) }}
{{- $_ := set $env "AUTH_USERS_FILE" (printf "%s/users/users" $base) }}
{{- end }}
{{- if has "jwt" $auth.methods }}
{{- $jwt := $auth.jwt }}
{{- $_ := set $env "AUTH_JWT_ISSUER" $jwt.issuer }}
{{- $_ := set $env "AUTH_JWT_AUDIENCE" $jwt.audience }}
{{- $_ := set $env "AUTH_JWT_PRINCIPAL_CLAIM" $jwt.principalClaim }}
{{- $_ := set $env "AUTH_JWT_GROUPS_CLAIM" $jwt.groupsClaim }}
{{- if $jwt.jwksUrl }}
{{- $_ := set $env "AUTH_JWKS_URL" $jwt.jwksUrl }}
{{- if $jwt.jwksCAConfigMap }}
{{- $mounts = append $mounts (dict "name" "jwks-ca" "path" (printf "%s/jwks-ca" $base) "configMap" $jwt.jwksCAConfigMap "items" (list (dict "key" "ca.crt" "path" "ca.crt"))) }}
{{- $_ := set $env "AUTH_JWKS_CA_FILE" (printf "%s/jwks-ca/ca.crt" $base) }}
{{- end }}
{{- else }}
{{- $jwks := dict "name" "jwks" "path" (printf "%s/jwks" $base) "items" (list (dict "key" $jwt.jwksKey "path" "jwks.json")) }}
{{- if $jwt.jwksSecret }}{{ $_ := set $jwks "secret" $jwt.jwksSecret }}{{ else }}{{ $_ := set $jwks "configMap" $jwt.jwksConfigMap }}{{ end }}
{{- $mounts = append $mounts $jwks }}
{{- $_ := set $env "AUTH_JWKS_FILE" (printf "%s/jwks/jwks.json" $base) }}
{{- end }}
{{- end }}
{{- if has "mtls" $auth.methods }}
{{- $_ := set $env "AUTH_MTLS_PRINCIPAL" $auth.mtls.principal }}
{{- end }}
{{- /* authorization: the policy file as a directory mount (updates reach it), or explicitly none */}}
{{- if eq (include "tributary.authzMode" $root) "policy" }}
{{- $policy := $v.authz.policy }}
{{- $mount := dict "name" "authz-policy" "path" (printf "%s/authz" $base) }}
{{- if $policy.existingSecret }}
{{- $_ := set $mount "secret" $policy.existingSecret }}
{{- $_ := set $mount "items" (list (dict "key" $policy.key "path" "policy.yaml")) }}
{{- else if $policy.existingConfigMap }}
{{- $_ := set $mount "configMap" $policy.existingConfigMap }}
{{- $_ := set $mount "items" (list (dict "key" $policy.key "path" "policy.yaml")) }}
{{- else }}
{{- $_ := set $mount "configMap" (include "tributary.objectName" (list $root "authz-policy")) }}
{{- $_ := set $mount "items" (list (dict "key" "policy.yaml" "path" "policy.yaml")) }}
{{- end }}
{{- $mounts = append $mounts $mount }}
{{- $_ := set $env "AUTHZ_POLICY_FILE" (printf "%s/authz/policy.yaml" $base) }}
{{- else }}
{{- $_ := set $env "AUTHZ" "none" }}
{{- end }}
{{- $limits := $v.principalLimits }}
{{- $_ := set $env "LIMIT_REQUESTS_PER_SECOND" (toString (int64 $limits.requestsPerSecond)) }}
{{- $_ := set $env "LIMIT_BURST" (toString (int64 $limits.burst)) }}
{{- $_ := set $env "LIMIT_CONCURRENT_STREAMS" (toString (int64 $limits.concurrentStreams)) }}
{{- /* the service's own secrets */}}
{{- if eq .name "registry" }}
{{- $db := $c.database }}
{{- $items := list (dict "key" $db.urlKey "path" "url") }}
{{- $_ := set $env "DATABASE_URL_FILE" (printf "%s/database/url" $base) }}
{{- if $db.passwordKey }}
{{- $items = append $items (dict "key" $db.passwordKey "path" "password") }}
{{- $_ := set $env "DATABASE_PASSWORD_FILE" (printf "%s/database/password" $base) }}
{{- end }}
{{- $mounts = append $mounts (dict "name" "database" "path" (printf "%s/database" $base) "secret" (required "registry.database.existingSecret is required" $db.existingSecret) "items" $items) }}
{{- if $db.caSecret }}
{{- $mounts = append $mounts (dict "name" "database-ca" "path" (printf "%s/database-ca" $base) "secret" $db.caSecret "items" (list (dict "key" $db.caKey "path" "ca.crt"))) }}
{{- end }}
{{- else }}
{{- /* messaging -> registry */}}
{{- if hasPrefix "https://" $registryUrl }}
{{- if $v.messaging.registryCAConfigMap }}
{{- $mounts = append $mounts (dict "name" "registry-ca" "path" (printf "%s/registry-ca" $base) "configMap" $v.messaging.registryCAConfigMap "items" (list (dict "key" "ca.crt" "path" "ca.crt"))) }}
{{- $_ := set $env "REGISTRY_CA_FILE" (printf "%s/registry-ca/ca.crt" $base) }}
{{- else if and $inRelease $v.tls.enabled }}
{{- $_ := set $env "REGISTRY_CA_FILE" (printf "%s/tls/ca.crt" $base) }}
{{- end }}
{{- end }}
{{- $ra := $c.registryAuth }}
{{- $method := include "tributary.registryAuthMethod" $root }}
{{- $dir := printf "%s/registry-auth" $base }}
{{- if eq $method "basic" }}
{{- $secret := $ra.existingSecret }}
{{- $key := $ra.passwordKey }}
{{- if not $secret }}{{ $secret = include "tributary.objectName" (list $root "messaging-password") }}{{ $key = "password" }}{{ end }}
{{- $mounts = append $mounts (dict "name" "registry-auth" "path" $dir "secret" $secret "items" (list (dict "key" $key "path" "password"))) }}
{{- $_ := set $env "REGISTRY_USERNAME" $ra.username }}
{{- $_ := set $env "REGISTRY_PASSWORD_FILE" (printf "%s/password" $dir) }}
{{- else if eq $method "bearer" }}
{{- $mounts = append $mounts (dict "name" "registry-auth" "path" $dir "secret" $ra.existingSecret "items" (list (dict "key" $ra.tokenKey "path" "token"))) }}
{{- $_ := set $env "REGISTRY_BEARER_TOKEN_FILE" (printf "%s/token" $dir) }}
{{- else if eq $method "mtls" }}
{{- $secret := default (include "tributary.objectName" (list $root "messaging-client-tls")) $ra.existingSecret }}
{{- $mounts = append $mounts (dict "name" "registry-auth" "path" $dir "secret" $secret "items" (list (dict "key" "tls.crt" "path" "tls.crt") (dict "key" "tls.key" "path" "tls.key"))) }}
{{- $_ := set $env "REGISTRY_CLIENT_CERT_FILE" (printf "%s/tls.crt" $dir) }}
{{- $_ := set $env "REGISTRY_CLIENT_KEY_FILE" (printf "%s/tls.key" $dir) }}
{{- end }}
{{- /* Kafka */}}
{{- $kafka := $c.kafka }}
{{- if $kafka.existingSecret }}
{{- $items := list }}
{{- if $kafka.propertiesFileKey }}
{{- $items = append $items (dict "key" $kafka.propertiesFileKey "path" "kafka.properties") }}
{{- $_ := set $env "KAFKA_PROPERTIES_FILE" (printf "%s/kafka/kafka.properties" $base) }}
{{- end }}
{{- if $kafka.saslPasswordKey }}
{{- $items = append $items (dict "key" $kafka.saslPasswordKey "path" "sasl-password") }}
{{- $_ := set $env "KAFKA_SASL_PASSWORD_FILE" (printf "%s/kafka/sasl-password" $base) }}
{{- end }}
{{- $mounts = append $mounts (dict "name" "kafka" "path" (printf "%s/kafka" $base) "secret" $kafka.existingSecret "items" $items) }}
{{- end }}
{{- if $kafka.tls.existingSecret }}
{{- $mounts = append $mounts (dict "name" "kafka-tls" "path" (printf "%s/kafka-tls" $base) "secret" $kafka.tls.existingSecret) }}
{{- end }}
{{- end }}
{{- toJson (dict "mounts" $mounts "env" $env) }}
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
{{- $l := $c.schemaLimits }}
{{- $_ := set $env "REGISTRY_MAX_SCHEMA_DEPTH" (toString (int64 $l.maxSchemaDepth)) }}
{{- $_ := set $env "REGISTRY_MAX_RECORD_FIELDS" (toString (int64 $l.maxRecordFields)) }}
{{- $_ := set $env "REGISTRY_MAX_ENUM_SYMBOLS" (toString (int64 $l.maxEnumSymbols)) }}
{{- $_ := set $env "REGISTRY_MAX_UNION_BRANCHES" (toString (int64 $l.maxUnionBranches)) }}
{{- $_ := set $env "REGISTRY_MAX_NAMED_TYPES" (toString (int64 $l.maxNamedTypes)) }}
{{- $_ := set $env "REGISTRY_MAX_NAME_BYTES" (toString (int64 $l.maxNameBytes)) }}
{{- $_ := set $env "REGISTRY_MAX_REFERENCES" (toString (int64 $l.maxReferences)) }}
{{- $_ := set $env "REGISTRY_MAX_REFERENCE_DEPTH" (toString (int64 $l.maxReferenceDepth)) }}
{{- $_ := set $env "REGISTRY_MAX_DECIMAL_PRECISION" (toString (int64 $l.maxDecimalPrecision)) }}
{{- $_ := set $env "REGISTRY_MAX_SCHEMA_WORK" (toString (int64 $l.maxSchemaWork)) }}
{{- $_ := set $env "REGISTRY_MAX_INCOMPATIBILITIES" (toString (int64 $l.maxIncompatibilities)) }}
{{- $_ := set $env "REGISTRY_MAX_CONNECTIONS" (toString (int64 $c.connections.maxConnections)) }}
{{- $_ := set $env "REGISTRY_MAX_CONCURRENT_STREAMS" (toString (int64 $c.connections.maxConcurrentStreams)) }}
{{- $_ := set $env "REGISTRY_IDLE_TIMEOUT_MS" (toString (int64 $c.connections.idleTimeoutMs)) }}
{{- $_ := set $env "REGISTRY_HEADER_READ_TIMEOUT_MS" (toString (int64 $c.connections.headerReadTimeoutMs)) }}
{{- $_ := set $env "REGISTRY_HTTP2_KEEPALIVE_INTERVAL_MS" (toString (int64 $c.connections.http2KeepaliveIntervalMs)) }}
{{- $_ := set $env "REGISTRY_HTTP2_KEEPALIVE_TIMEOUT_MS" (toString (int64 $c.connections.http2KeepaliveTimeoutMs)) }}
{{- $_ := set $env "REGISTRY_REQUEST_TIMEOUT_MS" (toString (int64 $c.connections.requestTimeoutMs)) }}
{{- $_ := set $env "REGISTRY_SHUTDOWN_TIMEOUT_MS" (toString (int64 $c.shutdownTimeoutMs)) }}
{{- else }}
{{- $_ := set $env "MESSAGING_GRPC_ADDR" (printf "0.0.0.0:%v" $c.service.grpcPort) }}
{{- $_ := set $env "MESSAGING_REST_ADDR" (printf "0.0.0.0:%v" $c.service.httpPort) }}
{{- $_ := set $env "MESSAGING_CONSUMER_INSTANCE_TIMEOUT_MS" (toString (int64 $c.rest.consumerInstanceTimeoutMs)) }}
{{- with $c.rest.advertisedUrl }}
{{- $_ := set $env "MESSAGING_REST_ADVERTISED_URL" . }}
{{- end }}
{{- $_ := set $env "MESSAGING_METRICS_ADDR" (printf "0.0.0.0:%v" $c.service.metricsPort) }}
{{- $_ := set $env "KAFKA_BOOTSTRAP_SERVERS" $c.kafka.bootstrapServers }}
{{- $_ := set $env "REGISTRY_URL" (include "tributary.registryUrl" .root) }}
{{- $_ := set $env "MESSAGING_LATEST_SCHEMA_TTL_MS" (toString (int64 $c.latestSchemaTtlMs)) }}
{{- $_ := set $env "MESSAGING_LATEST_SCHEMA_MAX_STALE_MS" (toString (int64 $c.latestSchemaMaxStaleMs)) }}
{{- $_ := set $env "MESSAGING_DELIVERY_TIMEOUT_MS" (toString (int64 $c.deliveryTimeoutMs)) }}
{{- $_ := set $env "MESSAGING_KAFKA_TIMEOUT_MS" (toString (int64 $c.kafkaTimeoutMs)) }}
{{- $_ := set $env "MESSAGING_PRODUCE_MAX_IN_FLIGHT" (toString (int64 $c.produceMaxInFlight)) }}
{{- $l := $c.schemaLimits }}
{{- $_ := set $env "MESSAGING_MAX_SCHEMA_BYTES" (toString (int64 $l.maxSchemaBytes)) }}
{{- $_ := set $env "MESSAGING_MAX_SCHEMA_DEPTH" (toString (int64 $l.maxSchemaDepth)) }}
{{- $_ := set $env "MESSAGING_MAX_RECORD_FIELDS" (toString (int64 $l.maxRecordFields)) }}
{{- $_ := set $env "MESSAGING_MAX_ENUM_SYMBOLS" (toString (int64 $l.maxEnumSymbols)) }}
{{- $_ := set $env "MESSAGING_MAX_UNION_BRANCHES" (toString (int64 $l.maxUnionBranches)) }}
{{- $_ := set $env "MESSAGING_MAX_NAMED_TYPES" (toString (int64 $l.maxNamedTypes)) }}
{{- $_ := set $env "MESSAGING_MAX_NAME_BYTES" (toString (int64 $l.maxNameBytes)) }}
{{- $_ := set $env "MESSAGING_MAX_REFERENCES" (toString (int64 $l.maxReferences)) }}
{{- $_ := set $env "MESSAGING_MAX_REFERENCE_DEPTH" (toString (int64 $l.maxReferenceDepth)) }}
{{- $_ := set $env "MESSAGING_MAX_DECIMAL_PRECISION" (toString (int64 $l.maxDecimalPrecision)) }}
{{- $_ := set $env "MESSAGING_MAX_SCHEMA_WORK" (toString (int64 $l.maxSchemaWork)) }}
{{- $_ := set $env "MESSAGING_MAX_JSON_DEPTH" (toString (int64 $l.maxJsonDepth)) }}
{{- $_ := set $env "MESSAGING_MAX_CONSUME_STREAMS" (toString (int64 $c.maxConsumeStreams)) }}
{{- $_ := set $env "MESSAGING_MAX_CONNECTIONS" (toString (int64 $c.connections.maxConnections)) }}
{{- $_ := set $env "MESSAGING_MAX_CONCURRENT_STREAMS" (toString (int64 $c.connections.maxConcurrentStreams)) }}
{{- $_ := set $env "MESSAGING_IDLE_TIMEOUT_MS" (toString (int64 $c.connections.idleTimeoutMs)) }}
{{- $_ := set $env "MESSAGING_HEADER_READ_TIMEOUT_MS" (toString (int64 $c.connections.headerReadTimeoutMs)) }}
{{- $_ := set $env "MESSAGING_HTTP2_KEEPALIVE_INTERVAL_MS" (toString (int64 $c.connections.http2KeepaliveIntervalMs)) }}
{{- $_ := set $env "MESSAGING_HTTP2_KEEPALIVE_TIMEOUT_MS" (toString (int64 $c.connections.http2KeepaliveTimeoutMs)) }}
{{- $_ := set $env "MESSAGING_REQUEST_TIMEOUT_MS" (toString (int64 $c.connections.requestTimeoutMs)) }}
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
{{- range $key, $value := (include "tributary.security" . | fromJson).env }}
{{- $_ := set $env $key $value }}
{{- end }}
{{- range $key, $value := $c.extraConfig }}
{{- $_ := set $env $key (toString $value) }}
{{- end }}
{{- range $key := keys $env | sortAlpha }}
{{ $key }}: {{ get $env $key | quote }}
{{- end }}
{{- end }}

{{/*
A liveness/readiness/startup probe: GET on the metrics port (kubelet's gRPC probes cannot speak
TLS), HTTPS with metrics.tls (the kubelet does not verify the certificate). Args: list of ctx, the
probe's values, the path.
*/}}
{{- define "tributary.httpProbe" -}}
{{- $ctx := index . 0 }}
{{- $probe := index . 1 }}
httpGet:
  port: metrics
  path: {{ index . 2 }}
  scheme: {{ ternary "HTTPS" "HTTP" (and $ctx.root.Values.tls.enabled $ctx.root.Values.metrics.tls) }}
{{ toYaml $probe }}
{{- end }}
