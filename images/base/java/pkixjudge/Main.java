package pkixjudge;

import java.io.BufferedReader;
import java.io.ByteArrayInputStream;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.Security;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509TrustManager;
import javax.security.auth.x500.X500Principal;
import sun.security.util.AnchorCertificates;
import sun.security.util.HostnameChecker;
import sun.security.validator.Validator;

/**
 * Chain verdicts decided by this JRE: its PKIX trust manager, its java.security
 * constraints, its exception messages; and key and trust stores as it loads them
 * (Stores). One JSON request per stdin line, one JSON
 * answer per stdout line, so a caller pays the JVM start once, not per handshake.
 *
 * Needs --add-exports java.base/sun.security.util=ALL-UNNAMED and
 * java.base/sun.security.validator=ALL-UNNAMED (host name check and the trusted
 * chain, exactly as the JRE's own trust manager uses them).
 */
public final class Main {
    private static final String[] SECURITY_PROPERTIES = {
        "jdk.certpath.disabledAlgorithms", "jdk.tls.disabledAlgorithms", "jdk.security.legacyAlgorithms",
    };

    /** A request the validator cannot act on; answered with "error", never a verdict. */
    static final class BadRequest extends Exception {
        private static final long serialVersionUID = 1L;

        BadRequest(String message) {
            super(message);
        }
    }

    private Main() {
    }

    public static void main(String[] args) throws IOException {
        PrintStream out = new PrintStream(new FileOutputStream(FileDescriptor.out), false, StandardCharsets.UTF_8);
        // stdout is the protocol channel: anything else the JRE prints goes to stderr.
        System.setOut(System.err);
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            if (line.isBlank()) {
                continue;
            }
            out.print(Json.write(handle(line)));
            out.print('\n');
            out.flush();
        }
    }

    static Map<String, Object> handle(String line) {
        Map<String, Object> reply = new LinkedHashMap<>();
        Map<String, Object> request;
        try {
            request = Json.parseObject(line);
        } catch (IllegalArgumentException e) {
            reply.put("id", null);
            reply.put("error", e.getMessage());
            return reply;
        }
        reply.put("id", request.get("id"));
        try {
            Object cmd = request.get("cmd");
            if ("info".equals(cmd)) {
                reply.putAll(info());
            } else if ("store".equals(cmd)) {
                String path = string(request, "path", null);
                String password = string(request, "password", null);
                if (path == null || password == null) {
                    throw new BadRequest("store needs path and password");
                }
                reply.putAll(Stores.list(path, password, string(request, "type", "")));
            } else if (cmd == null) {
                reply.putAll(judge(request));
            } else {
                throw new BadRequest("unknown cmd " + cmd);
            }
        } catch (BadRequest e) {
            reply.put("error", e.getMessage());
        }
        return reply;
    }

    static Map<String, Object> info() {
        Map<String, Object> info = new LinkedHashMap<>();
        for (String key : new String[] {"java.version", "java.vendor", "java.vm.version", "java.home"}) {
            info.put(key, System.getProperty(key));
        }
        Path main = Path.of(System.getProperty("java.home"), "conf", "security", "java.security");
        try {
            // Debian links the file to /etc/java-N-openjdk/security: name the file an admin edits.
            main = main.toRealPath();
        } catch (IOException e) {
            info.put("java.security.error", e.toString());
        }
        info.put("java.security", main.toString());
        info.put("java.security.properties", System.getProperty("java.security.properties"));
        for (String key : SECURITY_PROPERTIES) {
            info.put(key, Security.getProperty(key));
        }
        return info;
    }

    static Map<String, Object> judge(Map<String, Object> request) throws BadRequest {
        String mode = string(request, "mode", null);
        if (!"client".equals(mode) && !"server".equals(mode)) {
            throw new BadRequest("mode must be \"client\" or \"server\"");
        }
        String authType = string(request, "auth_type", "UNKNOWN");
        String host = string(request, "host", null);
        List<byte[]> chainDer = derList(request, "chain");
        if (chainDer.isEmpty()) {
            throw new BadRequest("chain is empty (the handshake refuses that before any trust manager)");
        }
        AnchorSet anchors = anchors(request);
        Map<String, Object> verdict = new LinkedHashMap<>();
        if (anchors == null) {  // dropped (only a few are kept) or never sent: the caller sends them again
            verdict.put("unknown_anchors", true);
            return verdict;
        }
        try {
            X509Certificate[] chain = new X509Certificate[chainDer.size()];
            for (int i = 0; i < chain.length; i++) {
                chain[i] = parse(chainDer.get(i));
            }
            X509Certificate[] path = check("client".equals(mode), chain, anchors, authType, host);
            X509Certificate anchor = path[path.length - 1];
            verdict.put("ok", true);
            verdict.put("anchor", anchor.getSubjectX500Principal().getName(X500Principal.RFC2253));
            List<Object> validated = new ArrayList<>();
            for (X509Certificate c : path) {
                validated.add(Base64.getEncoder().encodeToString(c.getEncoded()));
            }
            verdict.put("path", validated);
        } catch (Exception e) {
            // Whatever the trust manager throws (CertificateException, or a RuntimeException such as
            // empty trust anchors) is the JRE's verdict on this chain, reported in full.
            verdict.put("ok", false);
            verdict.put("exception", e.getClass().getName());
            verdict.put("message", e.getMessage());
            verdict.put("certificate_exception", e instanceof CertificateException);
            List<Object> causes = new ArrayList<>();
            for (Throwable c = e.getCause(); c != null && causes.size() < 8; c = c.getCause()) {
                causes.add(c.toString());
            }
            verdict.put("cause", causes.isEmpty() ? null : causes.get(0));
            verdict.put("causes", causes);
        }
        return verdict;
    }

    /**
     * One set of trust anchors with the trust manager and validators built on it. A primary
     * asks with the same ~150 anchors (its Trusted CA list and the public bundle) handshake
     * after handshake: the caller sends them once under a ref, then the ref alone.
     */
    static final class AnchorSet {
        final List<X509Certificate> anchors;
        private X509TrustManager manager;
        private final Map<String, Validator> validators = new LinkedHashMap<>();

        AnchorSet(List<X509Certificate> anchors) {
            this.anchors = List.copyOf(anchors);
        }

        X509TrustManager manager() throws Exception {
            if (manager == null) {
                KeyStore store = KeyStore.getInstance("PKCS12");
                store.load(null, null);
                for (int i = 0; i < anchors.size(); i++) {
                    store.setCertificateEntry("anchor-" + i, anchors.get(i));
                }
                TrustManagerFactory factory = TrustManagerFactory.getInstance("PKIX");
                factory.init(store);
                for (TrustManager tm : factory.getTrustManagers()) {
                    if (tm instanceof X509TrustManager) {
                        manager = (X509TrustManager) tm;
                    }
                }
                if (manager == null) {
                    throw new IllegalStateException("the PKIX TrustManagerFactory returned no X509TrustManager");
                }
            }
            return manager;
        }

        Validator validator(String variant) {
            return validators.computeIfAbsent(variant,
                    v -> Validator.getInstance(Validator.TYPE_PKIX, v, anchors));
        }
    }

    private static final int ANCHOR_SETS_KEPT = 8;
    private static final Map<String, AnchorSet> ANCHOR_SETS = new LinkedHashMap<>(16, 0.75f, true) {
        private static final long serialVersionUID = 1L;

        @Override
        protected boolean removeEldestEntry(Map.Entry<String, AnchorSet> eldest) {
            return size() > ANCHOR_SETS_KEPT;
        }
    };

    /** The request's anchors: sent in full (kept under anchors_ref when given), or by ref alone; null if the ref is unknown. */
    static AnchorSet anchors(Map<String, Object> request) throws BadRequest {
        String ref = string(request, "anchors_ref", null);
        if (!request.containsKey("anchors")) {
            if (ref == null) {
                throw new BadRequest("anchors must be a list of base64 DER certificates");
            }
            return ANCHOR_SETS.get(ref);
        }
        List<X509Certificate> anchors = new ArrayList<>();
        for (byte[] der : derList(request, "anchors")) {
            try {
                anchors.add(parse(der));
            } catch (CertificateException e) {
                throw new BadRequest("anchor " + anchors.size() + " is not a certificate Java reads: " + e);
            }
        }
        AnchorSet set = new AnchorSet(anchors);
        if (ref != null) {
            ANCHOR_SETS.put(ref, set);
        }
        return set;
    }

    /** The JRE's checks in the JRE's order; returns the validated path, leaf first, ending at its trust anchor. */
    static X509Certificate[] check(boolean clientMode, X509Certificate[] chain, AnchorSet anchors,
                                   String authType, String host) throws Exception {
        X509TrustManager manager = anchors.manager();
        if (clientMode) {
            manager.checkClientTrusted(chain.clone(), authType);
        } else {
            manager.checkServerTrusted(chain.clone(), authType);
        }
        // The trust manager answers yes/no only; the same validator it uses names the anchor.
        String variant = clientMode ? Validator.VAR_TLS_CLIENT : Validator.VAR_TLS_SERVER;
        X509Certificate[] trusted = anchors.validator(variant).validate(chain.clone(), null, List.of(), null, authType);
        X509Certificate anchor = trusted[trusted.length - 1];
        if (host != null) {
            checkIdentity(host, trusted[0], AnchorCertificates.contains(anchor));
        }
        return trusted;
    }

    /** X509TrustManagerImpl.checkIdentity for endpoint identification "HTTPS". */
    static void checkIdentity(String host, X509Certificate leaf, boolean chainsToPublicCA)
            throws CertificateException {
        if (host.startsWith("[") && host.endsWith("]")) {
            host = host.substring(1, host.length() - 1);
        }
        HostnameChecker.getInstance(HostnameChecker.TYPE_TLS).match(host, leaf, chainsToPublicCA);
    }

    static X509Certificate parse(byte[] der) throws CertificateException {
        return (X509Certificate) CertificateFactory.getInstance("X.509")
                .generateCertificate(new ByteArrayInputStream(der));
    }

    private static String string(Map<String, Object> request, String key, String fallback) throws BadRequest {
        Object v = request.get(key);
        if (v == null) {
            return fallback;
        }
        if (!(v instanceof String)) {
            throw new BadRequest(key + " must be a string");
        }
        return (String) v;
    }

    private static List<byte[]> derList(Map<String, Object> request, String key) throws BadRequest {
        Object v = request.get(key);
        if (!(v instanceof List)) {
            throw new BadRequest(key + " must be a list of base64 DER certificates");
        }
        List<byte[]> out = new ArrayList<>();
        for (Object item : (List<?>) v) {
            if (!(item instanceof String)) {
                throw new BadRequest(key + " must be a list of base64 DER certificates");
            }
            try {
                out.add(Base64.getDecoder().decode((String) item));
            } catch (IllegalArgumentException e) {
                throw new BadRequest(key + "[" + out.size() + "] is not base64: " + e.getMessage());
            }
        }
        return out;
    }
}
