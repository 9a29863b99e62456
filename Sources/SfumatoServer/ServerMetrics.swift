import Prometheus

/// The server's Prometheus metrics, in a registry of its own (no process-wide bootstrap).
final class ServerMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let queueDepth: Gauge
    let running: Gauge
    let generationSeconds: ValueHistogram
    let stepsPerSecond: ValueHistogram

    init() {
        queueDepth = registry.makeGauge(descriptor: .init(namespace: "sfumato", metricName: "queue", unitName: "depth",
                                                          helpText: "Generations waiting for a slot"))
        running = registry.makeGauge(descriptor: .init(namespace: "sfumato", metricName: "generations", unitName: "running",
                                                       helpText: "Generations running"))
        generationSeconds = registry.makeValueHistogram(
            descriptor: .init(namespace: "sfumato", metricName: "generation", unitName: "seconds", helpText: "Seconds per image"),
            buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500])
        stepsPerSecond = registry.makeValueHistogram(
            descriptor: .init(namespace: "sfumato", metricName: "steps", unitName: "per_second", helpText: "Denoising steps per second of each image"),
            buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100])
    }

    func requests(route: String, status: Int) -> Counter {
        registry.makeCounter(descriptor: .init(namespace: "sfumato", metricName: "http_requests", unitName: "total",
                                               helpText: "HTTP requests by route and status"),
                             labels: [("route", route), ("status", String(status))])
    }
}
