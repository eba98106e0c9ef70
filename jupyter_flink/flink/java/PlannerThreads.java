package jupyterflink;

import java.lang.reflect.Field;
import java.lang.reflect.Method;

/**
 * Lets any JVM thread plan SQL, not only the one that created the table environment.
 *
 * <p>Calcite keeps its metadata provider in the ThreadLocal {@code RelMetadataQueryBase
 * .THREAD_PROVIDERS}, which Flink's planner sets on the thread that builds its cluster
 * (FLINK-23020, never fixed upstream). py4j serves Python calls from a pool of JVM threads,
 * so after an interrupted call or a call from a background Python thread, planning runs on
 * another thread and fails with "NullPointerException: metadataHandlerProvider". This swaps
 * the ThreadLocal for one whose initial value is Flink's provider, once per JVM, before any
 * query is planned.
 */
public class PlannerThreads {

    /** Install the fix for the planner of {@code plannerClass}'s class loader; idempotent. */
    public static synchronized String install(Class plannerClass) throws Exception {
        ClassLoader loader = plannerClass.getClassLoader();
        Class base = Class.forName("org.apache.calcite.rel.metadata.RelMetadataQueryBase", true, loader);
        Field field = base.getField("THREAD_PROVIDERS");
        ThreadLocal current = (ThreadLocal) field.get(null);
        if (current instanceof WithDefault) {
            return "already installed";
        }
        Class flinkProvider = Class.forName(
                "org.apache.flink.table.planner.plan.metadata.FlinkDefaultRelMetadataProvider", true, loader);
        // A Scala object: INSTANCE is a static method, not a field.
        Object instance = flinkProvider.getMethod("INSTANCE", new Class[0]).invoke(null, new Object[0]);
        Class janino = Class.forName("org.apache.calcite.rel.metadata.JaninoRelMetadataProvider", true, loader);
        Class providerType = Class.forName("org.apache.calcite.rel.metadata.RelMetadataProvider", true, loader);
        Method of = janino.getMethod("of", new Class[] {providerType});
        Object provider = of.invoke(null, new Object[] {instance});

        Class unsafeClass = Class.forName("sun.misc.Unsafe");
        Field theUnsafe = unsafeClass.getDeclaredField("theUnsafe");
        theUnsafe.setAccessible(true);
        Object unsafe = theUnsafe.get(null);
        Object staticBase = unsafeClass.getMethod("staticFieldBase", new Class[] {Field.class})
                .invoke(unsafe, new Object[] {field});
        Object offset = unsafeClass.getMethod("staticFieldOffset", new Class[] {Field.class})
                .invoke(unsafe, new Object[] {field});
        unsafeClass.getMethod("putObjectVolatile", new Class[] {Object.class, long.class, Object.class})
                .invoke(unsafe, new Object[] {staticBase, offset, new WithDefault(provider)});
        return "installed";
    }

    /** A ThreadLocal that starts out holding Flink's metadata provider on every thread. */
    public static class WithDefault extends ThreadLocal {
        private final Object provider;

        public WithDefault(Object provider) {
            this.provider = provider;
        }

        protected Object initialValue() {
            return provider;
        }
    }
}
