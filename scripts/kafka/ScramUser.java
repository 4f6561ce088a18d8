// Run by scripts/stack when the Kafka user's SCRAM-SHA-512 credential is missing from a running
// cluster or has an old password: storage formatted before the stack had a SASL_SSL listener, or
// a new .stack/secrets/kafka.password (fresh storage gets it at format time instead). Java
// source-file mode:
//   java -cp '.stack/kafka/libs/*' scripts/kafka/ScramUser.java BOOTSTRAP USER PASSWORD_FILE TIMEOUT_SECONDS
// Upserts USER's credential through the Admin API (over the PLAINTEXT listener), with the
// password read from PASSWORD_FILE (its first line), so that it is never on a command line; then
// waits until the broker describes it, so that a SASL_SSL login right after succeeds.
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.ScramMechanism;
import org.apache.kafka.clients.admin.UserScramCredentialUpsertion;
import org.apache.kafka.clients.admin.UserScramCredentialsDescription;
import org.apache.kafka.common.errors.ResourceNotFoundException;

public class ScramUser {
    static final ScramMechanism MECHANISM = ScramMechanism.SCRAM_SHA_512;
    static final int ITERATIONS = 8192;

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        String user = args[1];
        String password = Files.readString(Path.of(args[2]), StandardCharsets.UTF_8).split("\r?\n", 2)[0];
        if (password.isEmpty()) {
            throw new IllegalArgumentException(args[2] + " is empty");
        }
        long timeoutMs = Long.parseLong(args[3]) * 1000;
        long deadline = System.currentTimeMillis() + timeoutMs;
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, Long.toString(timeoutMs));
        props.put(AdminClientConfig.CLIENT_ID_CONFIG, "tributary-stack-scram");
        try (Admin admin = Admin.create(props)) {
            admin.alterUserScramCredentials(List.of(new UserScramCredentialUpsertion(
                    user, new ScramCredentialInfo(MECHANISM, ITERATIONS), password)))
                .all().get(timeoutMs, TimeUnit.MILLISECONDS);
            // the controller committed it; wait for the broker's metadata to have it too
            while (true) {
                try {
                    UserScramCredentialsDescription description = admin.describeUserScramCredentials(List.of(user))
                        .description(user).get(timeoutMs, TimeUnit.MILLISECONDS);
                    if (description.credentialInfos().stream().anyMatch(info -> info.mechanism() == MECHANISM)) {
                        System.out.println("SCRAM credentials of " + user + ": " + description.credentialInfos());
                        return;
                    }
                } catch (ExecutionException e) {
                    if (!(e.getCause() instanceof ResourceNotFoundException)) {
                        throw e;
                    }
                }
                if (System.currentTimeMillis() > deadline) {
                    throw new IllegalStateException("the broker does not describe " + user + "'s " + MECHANISM + " credential");
                }
                Thread.sleep(100);
            }
        }
    }
}
