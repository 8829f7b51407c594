package refpeer;

import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.Principal;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import javax.net.ssl.KeyManager;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLServerSocket;
import javax.net.ssl.SSLSession;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509ExtendedKeyManager;
import javax.security.auth.x500.X500Principal;

/** One end of a JSSE handshake, set up as an application would: its keystore, its truststore, the defaults. */
final class Peer {
    /** Sent by the server once its handshake is done; the client reads it to learn the server's verdict. */
    static final int READY = 42;

    final SSLContext context;
    final ObservedKeyManager observed;  // null without a keystore

    private Peer(SSLContext context, ObservedKeyManager observed) {
        this.context = context;
        this.observed = observed;
    }

    /** keystore: a PKCS12 file or null (no identity); trust: CA certificate files, PEM or DER. */
    static Peer create(Path keystore, char[] password, List<Path> trust)
            throws IOException, GeneralSecurityException {
        KeyManager[] kms = null;  // SSLContext.init(null, ...) is what an application without identity does
        ObservedKeyManager observed = null;
        if (keystore != null) {
            KeyStore ks = KeyStore.getInstance("PKCS12");
            try (InputStream in = Files.newInputStream(keystore)) {
                ks.load(in, password);
            }
            // The JRE's default algorithm (SunX509 unless java.security says otherwise), as real Java picks.
            KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
            kmf.init(ks, password);
            kms = kmf.getKeyManagers();
            if (kms.length == 1 && kms[0] instanceof X509ExtendedKeyManager km) {
                observed = new ObservedKeyManager(km);
                kms = new KeyManager[] {observed};
            }
        }
        KeyStore ts = KeyStore.getInstance(KeyStore.getDefaultType());
        ts.load(null, null);
        CertificateFactory cf = CertificateFactory.getInstance("X.509");
        int n = 0;
        for (Path file : trust) {
            try (InputStream in = Files.newInputStream(file)) {
                for (Certificate cert : cf.generateCertificates(in)) {
                    ts.setCertificateEntry("ca-" + n++, cert);
                }
            }
        }
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(ts);
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(kms, tmf.getTrustManagers(), null);
        return new Peer(ctx, observed);
    }

    /** A listening socket that requires a client certificate. */
    SSLServerSocket listen(InetSocketAddress bind, String[] protocols) throws IOException {
        SSLServerSocket ss = (SSLServerSocket) context.getServerSocketFactory().createServerSocket();
        ss.bind(bind, 1);
        ss.setNeedClientAuth(true);
        if (protocols != null) {
            ss.setEnabledProtocols(protocols);
        }
        return ss;
    }

    /** Accept one connection and do its handshake; the result as the server saw it. */
    static Map<String, Object> serve(SSLServerSocket ss, int timeoutMs) {
        String stage = "accept";
        try {
            ss.setSoTimeout(timeoutMs);
            try (SSLSocket s = (SSLSocket) ss.accept()) {
                s.setSoTimeout(timeoutMs);
                stage = "handshake";
                s.startHandshake();
                Map<String, Object> ok = success(s.getSession());
                stage = "write";
                s.getOutputStream().write(READY);
                s.getOutputStream().flush();
                awaitClose(s);
                return ok;
            }
        } catch (IOException | RuntimeException e) {
            return failure(stage, e);
        }
    }

    /** Wait for the client to close, so our close cannot cut its read short. */
    private static void awaitClose(SSLSocket s) {
        try {
            while (s.getInputStream().read() != -1) {
                // nothing else is expected
            }
        } catch (IOException e) {
            // The handshake and the byte are through: how the client hangs up is not part of the verdict.
        }
    }

    /** Connect to address:port over TCP, then TLS with ``peerHost`` as the name the client checks. */
    Map<String, Object> connect(String address, int port, String peerHost, String[] protocols, int timeoutMs) {
        String stage = "connect";
        Map<String, Object> result;
        try (Socket raw = new Socket()) {
            raw.connect(new InetSocketAddress(address, port), timeoutMs);
            raw.setSoTimeout(timeoutMs);
            stage = "handshake";
            try (SSLSocket s = (SSLSocket) context.getSocketFactory().createSocket(raw, peerHost, port, true)) {
                SSLParameters params = s.getSSLParameters();
                params.setEndpointIdentificationAlgorithm("HTTPS");
                if (protocols != null) {
                    params.setProtocols(protocols);
                }
                s.setSSLParameters(params);
                s.startHandshake();
                // With TLS 1.3 the client is done before the server has judged its certificate:
                // the server's verdict arrives with the first read.
                stage = "read";
                int b = s.getInputStream().read();
                if (b == READY) {
                    result = success(s.getSession());
                } else {
                    result = failure(stage,
                            new EOFException("the server closed the connection before its first byte"));
                }
            }
        } catch (IOException | RuntimeException e) {
            result = failure(stage, e);
        }
        if (observed != null) {
            result.put("requested_issuers", observed.requestedIssuers());
            result.put("offered_chain", observed.offeredChain());
        }
        return result;
    }

    static Map<String, Object> success(SSLSession session) throws IOException {
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("ok", true);
        r.put("protocol", session.getProtocol());
        Certificate[] peer = session.getPeerCertificates();
        List<String> names = new ArrayList<>();
        for (Certificate c : peer) {
            names.add(name(((X509Certificate) c).getSubjectX500Principal()));
        }
        r.put("peer_chain", names);
        return r;
    }

    /** The exception as Java reports it: class, getMessage(), and the chain of causes. */
    static Map<String, Object> failure(String stage, Throwable e) {
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("ok", false);
        r.put("stage", stage);
        r.put("exception", e.getClass().getName());
        r.put("message", e.getMessage());
        List<String> causes = new ArrayList<>();
        for (Throwable c = e.getCause(); c != null && causes.size() < 10; c = c.getCause()) {
            String name = c.getClass().getName();
            causes.add(c.getMessage() == null ? name : name + ": " + c.getMessage());
        }
        r.put("cause", causes.isEmpty() ? null : causes.get(0));
        r.put("causes", causes);
        return r;
    }

    static String name(Principal p) {
        return p instanceof X500Principal x ? x.getName(X500Principal.RFC2253) : p.getName();
    }

    static List<String> subjects(X509Certificate[] chain) {
        List<String> names = new ArrayList<>();
        if (chain != null) {
            for (X509Certificate c : chain) {
                names.add(name(c.getSubjectX500Principal()));
            }
        }
        return names;
    }
}
