{{/*
Container arguments: every value maps to a flag of `tenant-proxy serve`. No --kubeconfig: in a pod the proxy uses
its ServiceAccount (in-cluster configuration). Built as a list and printed with toYaml, so values that look like
YAML (a prefix ending in ":") stay strings.
*/}}
{{- define "tenant-proxy.args" -}}
{{- $p := .Values.proxy -}}
{{- $metricsHost := ternary "0.0.0.0" "127.0.0.1" (eq (include "tenant-proxy.metricsExposed" .) "true") -}}
{{- $args := list "serve"
  (printf "--secure-port=%v" $p.securePort)
  "--tls-cert-file=/etc/tenant-proxy/tls/tls.crt"
  "--tls-private-key-file=/etc/tenant-proxy/tls/tls.key"
  (printf "--metrics-bind-address=%s:%v" $metricsHost .Values.metrics.port)
  (printf "--anonymous-auth=%t" $p.anonymousAuth)
  (printf "--authentication-token-webhook-cache-ttl=%s" $p.tokenCacheTTL)
  (printf "--authentication-token-failure-cache-ttl=%s" $p.tokenFailureCacheTTL)
  (printf "--review-timeout=%s" $p.reviewTimeout)
  (printf "--max-impersonation-values=%v" $p.maxImpersonationValues)
  (printf "--capsule-configuration-name=%s" .Values.capsule.configurationName) -}}
{{- if .Values.metrics.profiling }}{{ $args = append $args "--profiling" }}{{ end -}}
{{- with $p.auditLogPath }}{{ $args = append $args (printf "--audit-log-path=%s" .) }}{{ end -}}
{{- with $p.apiAudiences }}{{ $args = append $args (printf "--api-audiences=%s" (join "," .)) }}{{ end -}}
{{- if $p.clientCAConfigMap }}{{ $args = append $args "--client-ca-file=/etc/tenant-proxy/client-ca/ca.crt" }}{{ end -}}
{{- with .Values.oidc }}
{{- if .issuerURL }}
{{- $args = concat $args (list
  (printf "--oidc-issuer-url=%s" .issuerURL)
  (printf "--oidc-client-id=%s" (required "oidc.clientID is required with oidc.issuerURL" .clientID))
  (printf "--oidc-username-claim=%s" .usernameClaim)
  (printf "--oidc-signing-algs=%s" (join "," .signingAlgs))) }}
{{- with .usernamePrefix }}{{ $args = append $args (printf "--oidc-username-prefix=%s" .) }}{{ end }}
{{- with .groupsClaim }}{{ $args = append $args (printf "--oidc-groups-claim=%s" .) }}{{ end }}
{{- with .groupsPrefix }}{{ $args = append $args (printf "--oidc-groups-prefix=%s" .) }}{{ end }}
{{- range $k, $v := .requiredClaims }}{{ $args = append $args (printf "--oidc-required-claim=%s=%s" $k $v) }}{{ end }}
{{- if .caConfigMap }}{{ $args = append $args "--oidc-ca-file=/etc/tenant-proxy/oidc-ca/ca.crt" }}{{ end }}
{{- end }}
{{- end }}
{{- with .Values.requestHeader }}
{{- if .clientCAConfigMap }}
{{- $args = concat $args (list
  "--requestheader-client-ca-file=/etc/tenant-proxy/requestheader-ca/ca.crt"
  (printf "--requestheader-username-headers=%s" (join "," .usernameHeaders))
  (printf "--requestheader-uid-headers=%s" (join "," .uidHeaders))
  (printf "--requestheader-group-headers=%s" (join "," .groupHeaders))
  (printf "--requestheader-extra-headers-prefix=%s" (join "," .extraHeadersPrefix))) }}
{{- with .allowedNames }}{{ $args = append $args (printf "--requestheader-allowed-names=%s" (join "," .)) }}{{ end }}
{{- end }}
{{- end }}
{{- $args = append $args (printf "-v=%v" $p.logLevel) }}
{{- concat $args $p.extraArgs | toYaml }}
{{- end }}

{{/* Volume name -> ConfigMap for every CA bundle that is configured, as JSON (templates cannot return maps). */}}
{{- define "tenant-proxy.caConfigMaps" -}}
{{- $m := dict }}
{{- with .Values.proxy.clientCAConfigMap }}{{ $_ := set $m "client-ca" . }}{{ end }}
{{- if .Values.oidc.issuerURL }}{{ with .Values.oidc.caConfigMap }}{{ $_ := set $m "oidc-ca" . }}{{ end }}{{ end }}
{{- with .Values.requestHeader.clientCAConfigMap }}{{ $_ := set $m "requestheader-ca" . }}{{ end }}
{{- toJson $m }}
{{- end }}

{{/* Spread replicas over nodes and zones unless the user wrote their own constraints. */}}
{{- define "tenant-proxy.topologySpread" -}}
{{- if .Values.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml .Values.topologySpreadConstraints | nindent 2 }}
{{- else if .Values.topologySpread.keys }}
topologySpreadConstraints:
{{- range .Values.topologySpread.keys }}
  - maxSkew: 1
    topologyKey: {{ . }}
    whenUnsatisfiable: {{ $.Values.topologySpread.whenUnsatisfiable }}
    # Count only pods of the same rollout, so a rolling update is not blocked by the old ReplicaSet's pods.
    matchLabelKeys: [pod-template-hash]
    labelSelector:
      matchLabels:
        {{- include "tenant-proxy.selectorLabels" $ | nindent 8 }}
{{- end }}
{{- end }}
{{- end }}
