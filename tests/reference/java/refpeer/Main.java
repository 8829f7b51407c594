package refpeer;

import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.GeneralSecurityException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicReference;
import javax.net.ssl.SSLServerSocket;

/**
 * A reference Java server and client: one JSSE handshake, one JSON line on stdout.
 *
 * <pre>
 * pair   --server-keystore F --server-password P [--server-trust F]... [--client-keystore F
 *        --client-password P] [--client-trust F]... --host NAME [--protocols L] [--timeout-ms N]
 * server --keystore F --password P [--trust F]... [--bind A] [--port N] [--port-file F]
 *        [--protocols L] [--timeout-ms N]
 * client [--keystore F --password P] [--trust F]... --connect A:PORT --host NAME [--protocols L] [--timeout-ms N]
 * </pre>
 *
 * "pair" runs both ends in one JVM over loopback: the server on a thread, the client connecting
 * to 127.0.0.1 with NAME as the host it checks. Exit code 0 whatever the verdict; 2 for bad usage.
 */
public final class Main {
    private static final Set<String> REPEATED = Set.of("--trust", "--server-trust", "--client-trust");

    private Main() {
    }

    public static void main(String[] args) throws InterruptedException {
        PrintStream out = new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8);
        // stdout carries the one JSON line: anything else the JRE prints goes to stderr.
        System.setOut(System.err);
        Map<String, Object> result;
        try {
            if (args.length == 0) {
                throw new IllegalArgumentException("a mode: pair, server or client");
            }
            Map<String, List<String>> opts = parse(args);
            int timeout = Integer.parseInt(one(opts, "--timeout-ms", "10000"));
            String[] protocols = opts.containsKey("--protocols") ? one(opts, "--protocols", null).split(",") : null;
            result = switch (args[0]) {
                case "pair" -> pair(opts, protocols, timeout);
                case "server" -> server(opts, protocols, timeout);
                case "client" -> client(opts, protocols, timeout);
                default -> throw new IllegalArgumentException("unknown mode " + args[0]);
            };
        } catch (IllegalArgumentException e) {
            System.err.println("usage error: " + e.getMessage());
            System.exit(2);
            return;
        }
        out.println(Json.write(result));
    }

    private static Map<String, List<String>> parse(String[] args) {
        Map<String, List<String>> opts = new HashMap<>();
        for (int i = 1; i < args.length; i += 2) {
            String key = args[i];
            if (!key.startsWith("--") || i + 1 >= args.length) {
                throw new IllegalArgumentException("expected --option value at " + key);
            }
            List<String> values = opts.computeIfAbsent(key, k -> new ArrayList<>());
            if (!values.isEmpty() && !REPEATED.contains(key)) {
                throw new IllegalArgumentException(key + " given twice");
            }
            values.add(args[i + 1]);
        }
        return opts;
    }

    private static String one(Map<String, List<String>> opts, String key, String fallback) {
        List<String> values = opts.get(key);
        if (values == null) {
            if (fallback == null) {
                throw new IllegalArgumentException(key + " is required");
            }
            return fallback;
        }
        return values.get(0);
    }

    private static List<Path> paths(Map<String, List<String>> opts, String key) {
        List<Path> out = new ArrayList<>();
        for (String v : opts.getOrDefault(key, List.of())) {
            out.add(Path.of(v));
        }
        return out;
    }

    /** The peer, or a "setup" failure (a keystore Java cannot load, a bad CA file) as the result. */
    private static Object setup(Map<String, List<String>> opts, String prefix, boolean keystoreRequired) {
        String ks = opts.containsKey(prefix + "keystore") ? one(opts, prefix + "keystore", null) : null;
        if (ks == null && keystoreRequired) {
            throw new IllegalArgumentException(prefix + "keystore is required");
        }
        char[] password = one(opts, prefix + "password", "").toCharArray();
        try {
            return Peer.create(ks == null ? null : Path.of(ks), password, paths(opts, prefix + "trust"));
        } catch (IOException | GeneralSecurityException | RuntimeException e) {
            return Peer.failure("setup", e);
        }
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> sided(Object failure, String side) {
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("ok", false);
        r.put("side", side);
        r.putAll((Map<String, Object>) failure);
        return r;
    }

    private static Map<String, Object> pair(Map<String, List<String>> opts, String[] protocols, int timeout)
            throws InterruptedException {
        String host = one(opts, "--host", null);
        Object server = setup(opts, "--server-", true);
        if (!(server instanceof Peer)) {
            return sided(server, "server");
        }
        Object client = setup(opts, "--client-", false);
        if (!(client instanceof Peer)) {
            return sided(client, "client");
        }
        SSLServerSocket ss;
        try {
            ss = ((Peer) server).listen(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), protocols);
        } catch (IOException | RuntimeException e) {
            return sided(Peer.failure("listen", e), "server");
        }
        AtomicReference<Map<String, Object>> served = new AtomicReference<>();
        Thread thread = new Thread(() -> served.set(Peer.serve(ss, timeout)), "reference-server");
        thread.start();
        Map<String, Object> c = ((Peer) client).connect("127.0.0.1", ss.getLocalPort(), host, protocols, timeout);
        thread.join(timeout + 5000L);
        Map<String, Object> s = served.get();
        try {
            ss.close();
        } catch (IOException e) {
            // A listening socket that fails to close changes nothing about the handshake just done.
        }
        if (s == null) {
            s = Peer.failure("accept", new IllegalStateException("the server thread did not finish"));
        }
        return combine(s, c);
    }

    /** Both ends' results; at the top, the verdict of the end that refused (the other one got its alert). */
    static Map<String, Object> combine(Map<String, Object> s, Map<String, Object> c) {
        Map<String, Object> r = new LinkedHashMap<>();
        boolean sOk = Boolean.TRUE.equals(s.get("ok"));
        boolean cOk = Boolean.TRUE.equals(c.get("ok"));
        r.put("ok", sOk && cOk);
        if (sOk && cOk) {
            r.put("protocol", s.get("protocol"));
        } else {
            // The refusing end raised its own error; the other end reports "Received fatal alert: ...".
            // When both (or neither) did, the server's is reported: it is the one the product logs.
            boolean serverOrigin = !sOk && (cOk || !isReaction(s) || isReaction(c));
            Map<String, Object> origin = serverOrigin ? s : c;
            r.put("side", serverOrigin ? "server" : "client");
            for (String key : List.of("stage", "exception", "message", "cause", "causes")) {
                r.put(key, origin.get(key));
            }
        }
        r.put("server", s);
        r.put("client", c);
        return r;
    }

    /**
     * An end's reaction to the other end's refusal: the alert it received ("Received fatal alert: x",
     * in newer JREs "(x) Received fatal alert: x"), or the connection failing under it (a broken pipe
     * or reset while it was still writing, the peer gone before a read).
     */
    private static boolean isReaction(Map<String, Object> result) {
        String cls = String.valueOf(result.get("exception"));
        String message = String.valueOf(result.get("message")).replaceFirst("^[(][a-z_]+[)] ", "");
        return message.startsWith("Received fatal alert: ") || message.startsWith("Remote host terminated")
                || cls.equals("java.net.SocketException") || cls.equals("java.io.EOFException");
    }

    private static Map<String, Object> server(Map<String, List<String>> opts, String[] protocols, int timeout) {
        Object peer = setup(opts, "--", true);
        if (!(peer instanceof Peer)) {
            return sided(peer, "server");
        }
        try {
            InetSocketAddress bind = new InetSocketAddress(InetAddress.getByName(one(opts, "--bind", "127.0.0.1")),
                    Integer.parseInt(one(opts, "--port", "0")));
            SSLServerSocket ss = ((Peer) peer).listen(bind, protocols);
            if (opts.containsKey("--port-file")) {
                // Written whole, then renamed: a reader never sees half a number.
                Path file = Path.of(one(opts, "--port-file", null));
                Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
                Files.writeString(tmp, ss.getLocalPort() + "\n");
                Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE);
            }
            try (ss) {
                Map<String, Object> s = Peer.serve(ss, timeout);
                return Boolean.TRUE.equals(s.get("ok")) ? s : sided(s, "server");
            }
        } catch (IOException | RuntimeException e) {
            return sided(Peer.failure("listen", e), "server");
        }
    }

    private static Map<String, Object> client(Map<String, List<String>> opts, String[] protocols, int timeout) {
        String connect = one(opts, "--connect", null);
        int colon = connect.lastIndexOf(':');
        if (colon < 0) {
            throw new IllegalArgumentException("--connect wants ADDRESS:PORT");
        }
        Object peer = setup(opts, "--", false);
        if (!(peer instanceof Peer)) {
            return sided(peer, "client");
        }
        Map<String, Object> c = ((Peer) peer).connect(connect.substring(0, colon),
                Integer.parseInt(connect.substring(colon + 1)), one(opts, "--host", null), protocols, timeout);
        return Boolean.TRUE.equals(c.get("ok")) ? c : sided(c, "client");
    }
}
