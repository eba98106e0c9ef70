package jupyterflink;

import java.lang.reflect.Field;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Flink's JVM-wide Transformation id counter (Transformation.ID_COUNTER).
 *
 * <p>Flink 2.x gives the collect sink of a SELECT the uid "tableCollectSink_" + its
 * transformation id (CollectDynamicSink), and a uid becomes the operator id. Raising the counter
 * above the number in a savepoint's collect sink uid guarantees that a resumed SELECT's sink does
 * not pick up the old sink's state. The counter is only ever raised, so ids stay unique.
 */
public class TransformationIds {
    private static AtomicInteger counter() throws Exception {
        Field field = Class.forName("org.apache.flink.api.dag.Transformation")
                .getDeclaredField("ID_COUNTER");
        field.setAccessible(true);
        return (AtomicInteger) field.get(null);
    }

    /** Make the next id larger than {@code atLeast}; returns the counter's value afterwards. */
    public static int raiseTo(int atLeast) throws Exception {
        AtomicInteger counter = counter();
        int now = counter.get();
        while (now < atLeast && !counter.compareAndSet(now, atLeast)) {
            now = counter.get();
        }
        return counter.get();
    }

    public static int current() throws Exception {
        return counter().get();
    }
}
