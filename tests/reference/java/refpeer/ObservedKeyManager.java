package refpeer;

import java.net.Socket;
import java.security.Principal;
import java.security.PrivateKey;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.List;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.X509ExtendedKeyManager;

/**
 * The JRE's default key manager, unchanged, with a record of what it was asked and what
 * it chose: the CA names of the server's CertificateRequest and the client alias picked
 * for them. Being an X509ExtendedKeyManager, JSSE uses it as is (no wrapper of its own),
 * so every choice is the delegate's.
 */
final class ObservedKeyManager extends X509ExtendedKeyManager {
    private final X509ExtendedKeyManager delegate;
    private volatile Principal[] requestedIssuers;
    private volatile String chosenClientAlias;
    private volatile boolean asked;

    ObservedKeyManager(X509ExtendedKeyManager delegate) {
        this.delegate = delegate;
    }

    /** The CA names the server listed (RFC 2253), or null when no client alias was asked for. */
    List<String> requestedIssuers() {
        if (!asked) {
            return null;
        }
        List<String> names = new ArrayList<>();
        if (requestedIssuers != null) {
            for (Principal p : requestedIssuers) {
                names.add(Peer.name(p));
            }
        }
        return names;
    }

    /** Subjects of the chain the client offered, [] for none, null when never asked. */
    List<String> offeredChain() {
        if (!asked) {
            return null;
        }
        String alias = chosenClientAlias;
        return alias == null ? List.of() : Peer.subjects(delegate.getCertificateChain(alias));
    }

    private String note(Principal[] issuers, String alias) {
        asked = true;
        requestedIssuers = issuers;
        // TLS 1.3 asks once per key type: keep the alias that was found.
        if (alias != null) {
            chosenClientAlias = alias;
        }
        return alias;
    }

    @Override
    public String chooseClientAlias(String[] keyType, Principal[] issuers, Socket socket) {
        return note(issuers, delegate.chooseClientAlias(keyType, issuers, socket));
    }

    @Override
    public String chooseEngineClientAlias(String[] keyType, Principal[] issuers, SSLEngine engine) {
        return note(issuers, delegate.chooseEngineClientAlias(keyType, issuers, engine));
    }

    @Override
    public String[] getClientAliases(String keyType, Principal[] issuers) {
        return delegate.getClientAliases(keyType, issuers);
    }

    @Override
    public String[] getServerAliases(String keyType, Principal[] issuers) {
        return delegate.getServerAliases(keyType, issuers);
    }

    @Override
    public String chooseServerAlias(String keyType, Principal[] issuers, Socket socket) {
        return delegate.chooseServerAlias(keyType, issuers, socket);
    }

    @Override
    public String chooseEngineServerAlias(String keyType, Principal[] issuers, SSLEngine engine) {
        return delegate.chooseEngineServerAlias(keyType, issuers, engine);
    }

    @Override
    public X509Certificate[] getCertificateChain(String alias) {
        return delegate.getCertificateChain(alias);
    }

    @Override
    public PrivateKey getPrivateKey(String alias) {
        return delegate.getPrivateKey(alias);
    }
}
