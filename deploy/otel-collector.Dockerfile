# The OpenTelemetry collector with BusyBox's wget for its compose health check: the official image
# is FROM scratch (the collector alone), so nothing in it could ask the health_check extension.
#   built by deploy/compose.observability.yaml (context: deploy/)
ARG OTELCOL_IMAGE=otel/opentelemetry-collector-contrib:0.114.0
FROM ${OTELCOL_IMAGE} AS otelcol

FROM alpine:3.20
COPY --from=otelcol /otelcol-contrib /otelcol-contrib
# the official image's user
USER 10001
ENTRYPOINT ["/otelcol-contrib"]
