package dev.ferry.qemu;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Predicate;

/**
 * A QEMU Machine Protocol client: JSON objects, one a line, over QEMU's {@code -qmp unix:PATH}
 * socket. It reads the greeting, leaves capabilities negotiation with {@code qmp_capabilities},
 * then matches each reply to its command by {@code id} and queues asynchronous events. Every wait
 * is bounded by the timeout given at {@link #connect}; a QEMU that exits closes the socket, which
 * fails every command waiting and every one after it.
 */
public final class Qmp implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();
    /** Events kept for {@link #awaitEvent}; older ones are dropped, as nothing waits for them. */
    private static final int EVENTS_KEPT = 1024;

    private final SocketChannel channel;
    private final Path path;
    private final long timeoutMillis;
    private final Map<Long, CompletableFuture<JsonNode>> pending = new ConcurrentHashMap<>();
    private final BlockingQueue<JsonNode> events = new LinkedBlockingQueue<>(EVENTS_KEPT);
    private final CompletableFuture<JsonNode> greeting = new CompletableFuture<>();
    private final AtomicLong ids = new AtomicLong();
    private final Thread reader;
    private volatile QmpException closedBy;

    private Qmp(SocketChannel channel, Path path, long timeoutMillis) {
        this.channel = channel;
        this.path = path;
        this.timeoutMillis = timeoutMillis;
        this.reader = Thread.ofPlatform().daemon().name("qmp-" + path.getFileName()).start(this::readLoop);
    }

    /**
     * Connects to QEMU's QMP socket at {@code socket}, reads the greeting and enters command mode.
     *
     * @param timeoutMillis the bound on every wait of this client: the greeting, each reply, each event
     * @throws QmpException if the socket does not answer as QMP in time
     */
    public static Qmp connect(Path socket, long timeoutMillis) {
        SocketChannel channel;
        try {
            channel = SocketChannel.open(StandardProtocolFamily.UNIX);
            channel.connect(UnixDomainSocketAddress.of(socket));
        } catch (IOException e) {
            throw new QmpException("cannot connect to QEMU's QMP socket " + socket + ": " + e.getMessage(), e);
        }
        Qmp qmp = new Qmp(channel, socket, timeoutMillis);
        try {
            JsonNode hello = qmp.await(qmp.greeting, "the QMP greeting");
            if (!hello.has("QMP")) {
                throw new QmpException(socket + " is not a QMP socket: it greeted with " + hello);
            }
            qmp.execute("qmp_capabilities");
            return qmp;
        } catch (QmpException e) {
            qmp.close();
            throw e;
        }
    }

    /** Runs {@code command} without arguments; see {@link #execute(String, Map)}. */
    public JsonNode execute(String command) {
        return execute(command, Map.of());
    }

    /**
     * Runs {@code command} with {@code arguments} and returns its {@code return} value.
     *
     * @throws QmpException if QEMU answers with an error, does not answer within the timeout, or is gone
     */
    public JsonNode execute(String command, Map<String, ?> arguments) {
        long id = ids.incrementAndGet();
        ObjectNode request = JSON.createObjectNode().put("execute", command).put("id", id);
        if (!arguments.isEmpty()) {
            request.set("arguments", JSON.valueToTree(arguments));
        }
        CompletableFuture<JsonNode> reply = new CompletableFuture<>();
        pending.put(id, reply);
        try {
            send(request);
            JsonNode answer = await(reply, "the reply to " + command);
            if (answer.has("error")) {
                JsonNode error = answer.get("error");
                throw new QmpException("QEMU refused " + command + ": " + error.path("class").asText() + ": "
                        + error.path("desc").asText(), error.path("class").asText());
            }
            return answer.path("return");
        } finally {
            pending.remove(id);
        }
    }

    /**
     * Waits for the next event named {@code name} that {@code matches}, skipping others, for at
     * most the timeout (or {@code millis}, when shorter).
     *
     * @throws QmpException if none comes in time or QEMU is gone
     */
    public JsonNode awaitEvent(String name, Predicate<JsonNode> matches, long millis) {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(Math.min(millis, timeoutMillis));
        while (true) {
            long left = deadline - System.nanoTime();
            JsonNode event;
            try {
                event = left > 0 ? events.poll(left, TimeUnit.NANOSECONDS) : null;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new QmpException("interrupted waiting for QEMU's " + name + " event", e);
            }
            if (event == null) {
                failIfClosed();
                throw new QmpException("no " + name + " event from QEMU (" + path + ") within "
                        + Math.min(millis, timeoutMillis) + " ms");
            }
            if (event.path("event").asText().equals(name) && matches.test(event.path("data"))) {
                return event.path("data");
            }
        }
    }

    /** The bound on every wait, as given to {@link #connect}. */
    public long timeoutMillis() {
        return timeoutMillis;
    }

    /** Whether the socket is gone (QEMU exited or closed it). */
    public boolean closed() {
        return closedBy != null;
    }

    private void send(JsonNode request) {
        failIfClosed();
        byte[] line;
        try {
            line = (JSON.writeValueAsString(request) + "\n").getBytes(StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new QmpException("cannot encode a QMP command: " + e.getMessage(), e);
        }
        ByteBuffer buffer = ByteBuffer.wrap(line);
        synchronized (channel) {
            try {
                while (buffer.hasRemaining()) {
                    channel.write(buffer);
                }
            } catch (IOException e) {
                throw new QmpException("QEMU's QMP socket " + path + " failed: " + e.getMessage(), e);
            }
        }
    }

    private JsonNode await(CompletableFuture<JsonNode> future, String what) {
        try {
            return future.get(timeoutMillis, TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            throw new QmpException("no answer from QEMU (" + path + ") within " + timeoutMillis + " ms: waiting for " + what);
        } catch (ExecutionException e) {
            throw e.getCause() instanceof QmpException q ? new QmpException(q.getMessage() + " (waiting for " + what + ")", q)
                    : new QmpException(e.getCause().toString(), e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new QmpException("interrupted waiting for " + what, e);
        }
    }

    private void failIfClosed() {
        QmpException closed = closedBy;
        if (closed != null) {
            throw new QmpException(closed.getMessage(), closed);
        }
    }

    private void readLoop() {
        ByteBuffer buffer = ByteBuffer.allocate(64 * 1024);
        ByteArrayOutputStream line = new ByteArrayOutputStream();
        String reason = "QEMU closed its QMP socket " + path + " (it exited?)";
        try {
            while (channel.read(buffer) >= 0) {
                buffer.flip();
                while (buffer.hasRemaining()) {
                    byte b = buffer.get();
                    if (b == '\n') {
                        dispatch(line.toString(StandardCharsets.UTF_8).trim());
                        line.reset();
                    } else {
                        line.write(b);
                    }
                }
                buffer.clear();
            }
        } catch (IOException e) {
            reason = closedBy != null ? closedBy.getMessage() : "QEMU's QMP socket " + path + " failed: " + e.getMessage();
        }
        QmpException closed = new QmpException(reason);
        closedBy = closed;
        greeting.completeExceptionally(closed);
        pending.values().forEach(f -> f.completeExceptionally(closed));
    }

    private void dispatch(String text) {
        if (text.isEmpty()) {
            return;
        }
        JsonNode message;
        try {
            message = JSON.readTree(text);
        } catch (IOException e) {
            QmpException bad = new QmpException("QEMU sent a line that is not JSON: " + text);
            pending.values().forEach(f -> f.completeExceptionally(bad));
            return;
        }
        if (message.has("QMP")) {
            greeting.complete(message);
        } else if (message.has("event")) {
            if (!events.offer(message)) {
                events.poll();
                events.offer(message);
            }
        } else if (message.has("id")) {
            CompletableFuture<JsonNode> reply = pending.get(message.get("id").asLong());
            if (reply != null) {
                reply.complete(message);
            }
        }
    }

    @Override
    public void close() {
        if (closedBy == null) {
            closedBy = new QmpException("the QMP client of " + path + " was closed");
        }
        try {
            channel.close();
        } catch (IOException ignored) {
            // closing: nothing is left to tell
        }
        try {
            reader.join(timeoutMillis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
