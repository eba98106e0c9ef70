package jupyterflink;

import java.lang.reflect.Field;
import java.util.Map;

/**
 * Changes a variable of this JVM's environment, as {@code System.getenv} reports it.
 *
 * <p>Flink's REST client reads the remote cluster's HTTP headers from the environment
 * ({@code FLINK_REST_CLIENT_HEADERS}) each time it is created, i.e. for each job submission,
 * but a JVM's environment is fixed at its start, and the kernel starts its JVM before the first
 * {@code %%flink.conf} cell (warm start). The map behind {@code System.getenv} is an
 * unmodifiable view of a modifiable one; Flink's own JVM options open {@code java.util} to
 * reflection ({@code --add-opens java.base/java.util=ALL-UNNAMED}).
 */
public class ProcessEnv {

    /** Set {@code name} to {@code value}, or remove it when {@code value} is null. */
    public static synchronized void set(String name, String value) throws Exception {
        Map view = System.getenv();
        Field inner = view.getClass().getDeclaredField("m");
        inner.setAccessible(true);
        Map modifiable = (Map) inner.get(view);
        if (value == null) {
            modifiable.remove(name);
        } else {
            modifiable.put(name, value);
        }
    }
}
