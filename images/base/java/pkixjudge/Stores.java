package pkixjudge;

import java.io.File;
import java.io.FileInputStream;
import java.io.InputStream;
import java.security.KeyStore;
import java.security.KeyStoreException;
import java.security.cert.Certificate;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A key or trust store as this JRE loads it: KeyStore.load, which is what keytool -list runs and what
 * the product runs at start. Without a type the type is probed from the file, as keytool does when
 * no -storetype is given. A store the JRE refuses is answered with the exception as Java prints it
 * (keytool prints the same after "keytool error: ").
 */
final class Stores {
    private Stores() {
    }

    static Map<String, Object> list(String path, String password, String type) {
        Map<String, Object> reply = new LinkedHashMap<>();
        char[] pass = password.toCharArray();
        try {
            if (new File(path).length() == 0) {  // keytool's own check before it loads (its words)
                throw new Exception("Keystore file exists, but is empty: " + path);
            }
            KeyStore store;
            if (type.isEmpty()) {
                store = KeyStore.getInstance(new File(path), pass);
            } else {
                store = KeyStore.getInstance(type);
                try (InputStream in = new FileInputStream(path)) {
                    store.load(in, pass);
                }
            }
            List<String> aliases = Collections.list(store.aliases());
            aliases.sort(String::compareTo);  // keytool -list's order
            List<Object> entries = new ArrayList<>();
            for (String alias : aliases) {
                entries.add(entry(store, alias));
            }
            reply.put("entries", entries);
        } catch (Exception e) {
            reply.put("refused", e.toString());
        }
        return reply;
    }

    private static Map<String, Object> entry(KeyStore store, String alias) throws Exception {
        Map<String, Object> entry = new LinkedHashMap<>();
        entry.put("alias", alias);
        entry.put("kind", kind(store, alias));
        Certificate[] certs = store.isKeyEntry(alias) ? store.getCertificateChain(alias)
                : new Certificate[] {store.getCertificate(alias)};
        List<Object> encoded = new ArrayList<>();
        for (Certificate cert : certs == null ? new Certificate[0] : certs) {
            if (cert != null) {
                encoded.add(Base64.getEncoder().encodeToString(cert.getEncoded()));
            }
        }
        entry.put("certs", encoded);
        return entry;
    }

    /** keytool's names for the entry types. */
    private static String kind(KeyStore store, String alias) throws KeyStoreException {
        if (store.entryInstanceOf(alias, KeyStore.PrivateKeyEntry.class)) {
            return "PrivateKeyEntry";
        }
        if (store.entryInstanceOf(alias, KeyStore.SecretKeyEntry.class)) {
            return "SecretKeyEntry";
        }
        if (store.entryInstanceOf(alias, KeyStore.TrustedCertificateEntry.class)) {
            return "trustedCertEntry";
        }
        return "unknown";
    }
}
