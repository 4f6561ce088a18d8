// Run by scripts/stack once after a fresh Kafka cluster starts (Java source-file mode:
// `java -cp '.stack/kafka/libs/*' scripts/kafka/Warmup.java BOOTSTRAP TIMEOUT_SECONDS`).
// Looking up a group and a transaction coordinator makes the broker create
// __consumer_offsets and __transaction_state now, so the first test that uses a
// consumer group or a transactional producer does not wait ~3 s for them.
import java.util.List;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.common.errors.GroupIdNotFoundException;
import org.apache.kafka.common.errors.TransactionalIdNotFoundException;

public class Warmup {
    public static void main(String[] args) throws Exception {
        long timeoutMs = Long.parseLong(args[1]) * 1000;
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, Long.toString(timeoutMs));
        props.put(AdminClientConfig.CLIENT_ID_CONFIG, "tributary-stack-warmup");
        try (Admin admin = Admin.create(props)) {
            admin.describeCluster().nodes().get(timeoutMs, TimeUnit.MILLISECONDS);
            try {
                admin.describeConsumerGroups(List.of("tributary-stack-warmup")).all()
                    .get(timeoutMs, TimeUnit.MILLISECONDS);
            } catch (ExecutionException e) {
                // answered by the group coordinator, so __consumer_offsets is loaded
                if (!(e.getCause() instanceof GroupIdNotFoundException)) {
                    throw e;
                }
            }
            try {
                admin.describeTransactions(List.of("tributary-stack-warmup")).all()
                    .get(timeoutMs, TimeUnit.MILLISECONDS);
            } catch (ExecutionException e) {
                if (!(e.getCause() instanceof TransactionalIdNotFoundException)) {
                    throw e;
                }
            }
        }
        System.out.println("kafka warm-up done");
    }
}
