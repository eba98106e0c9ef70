package jupyterflink;

import java.util.concurrent.ConcurrentLinkedQueue;

import org.apache.flink.api.common.JobExecutionResult;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.core.execution.JobListener;

/**
 * Notes the id of every job an environment submits, inside the JVM.
 *
 * <p>Flink calls {@code onJobSubmitted} before {@code executeAsync} returns. A listener in
 * Python would be called back through py4j's callback server, which under load may answer
 * only after the job already runs; a kernel interrupt in that window would then not know the
 * job it has to cancel. Here the id is queued synchronously and Python drains the queue.
 */
public class SubmittedJobs implements JobListener {
    private final ConcurrentLinkedQueue ids = new ConcurrentLinkedQueue();

    public void onJobSubmitted(JobClient jobClient, Throwable throwable) {
        if (jobClient != null) {
            ids.add(jobClient.getJobID().toHexString());
        }
    }

    public void onJobExecuted(JobExecutionResult result, Throwable throwable) {
    }

    /** The ids queued since the last call, comma-separated (one py4j call). */
    public String drain() {
        StringBuilder out = new StringBuilder();
        Object id;
        while ((id = ids.poll()) != null) {
            if (out.length() > 0) {
                out.append(',');
            }
            out.append((String) id);
        }
        return out.toString();
    }
}
