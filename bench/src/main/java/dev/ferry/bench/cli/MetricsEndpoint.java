package dev.ferry.bench.cli;

import com.sun.net.httpserver.HttpServer;
import dev.ferry.core.Configuration;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.BindException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;

/**
 * {@code --metrics-port}: the process's meters as Prometheus text on
 * {@code http://127.0.0.1:PORT/metrics} (loopback, as the destination's default listen address:
 * exposing it further is the operator's decision), for as long as the command runs.
 */
final class MetricsEndpoint implements AutoCloseable {
    private final MeterRegistry registry;
    private final HttpServer server;

    private MetricsEndpoint(MeterRegistry registry, HttpServer server) {
        this.registry = registry;
        this.server = server;
    }

    /** The endpoint {@code o} asks for (it says where on {@code err}), or a private registry when none. */
    static MetricsEndpoint of(Outputs outputs, PrintStream err) throws IOException {
        int port = outputs.metricsPort();
        if (port < 0) {
            return new MetricsEndpoint(new SimpleMeterRegistry(), null);
        }
        PrometheusMeterRegistry prometheus = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        HttpServer server;
        try {
            server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 16);
        } catch (BindException e) {
            throw new UsageException("--" + Configuration.METRICS_PORT.name() + " " + port + ": " + e.getMessage());
        }
        server.createContext("/metrics", exchange -> {
            int status = 200;
            byte[] body;
            try {
                body = prometheus.scrape().getBytes(StandardCharsets.UTF_8);
            } catch (Throwable t) {
                // a scrape that fails answers with why, rather than a connection closed without a word
                status = 500;
                body = ("scrape failed: " + t).getBytes(StandardCharsets.UTF_8);
            }
            exchange.getResponseHeaders().set("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
            exchange.sendResponseHeaders(status, body.length);
            try (OutputStream out = exchange.getResponseBody()) {
                out.write(body);
            }
        });
        server.start();
        err.println("metrics on http://127.0.0.1:" + server.getAddress().getPort() + "/metrics");
        err.flush();
        return new MetricsEndpoint(prometheus, server);
    }

    MeterRegistry registry() {
        return registry;
    }

    @Override
    public void close() {
        if (server != null) {
            server.stop(0);
        }
    }
}
