package jupyterflink;

import java.io.ByteArrayOutputStream;
import java.io.FileOutputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;

import org.apache.flink.api.common.JobStatus;
import org.apache.flink.api.python.shaded.org.apache.arrow.memory.BufferAllocator;
import org.apache.flink.api.python.shaded.org.apache.arrow.vector.VectorSchemaRoot;
import org.apache.flink.api.python.shaded.org.apache.arrow.vector.ipc.ArrowStreamWriter;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.table.api.internal.TableResultInternal;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.runtime.arrow.ArrowUtils;
import org.apache.flink.table.runtime.arrow.ArrowWriter;
import org.apache.flink.table.types.logical.RowType;
import org.apache.flink.types.RowKind;
import org.apache.flink.util.CloseableIterator;

/**
 * Drains a query's result in the JVM and keeps it ready for a live notebook table.
 *
 * <p>PyFlink's row iterator costs three py4j round trips per row; here a JVM thread reads the
 * changelog as fast as Flink delivers it and applies it to a bounded in-memory result:
 *
 * <ul>
 *   <li>update mode: the materialized table. Rows are counted (a multiset, as in Flink's SQL
 *       client), each distinct row keeps its position, and an update (-U then +U) takes the
 *       position of the row it replaces, so a refreshing table does not reshuffle. At most
 *       {@code maxRows} rows are held; rows beyond that are counted as dropped.
 *   <li>append mode: the newest {@code maxRows} added rows (older ones are counted as dropped).
 *   <li>single mode: the last added row.
 * </ul>
 *
 * <p>Python fetches a snapshot only when it refreshes the display, as one file: a 4-byte
 * big-endian length, a JSON header (counters, version, end state), then one Arrow IPC stream.
 * The Arrow vectors are reused between snapshots.
 *
 * <p>Compiled at run time by Janino (bundled with Flink), so: no lambdas, no generics.
 */
public class LiveResult implements Runnable {
    public static final int UPDATE = 0;
    public static final int APPEND = 1;
    public static final int SINGLE = 2;

    /** One distinct row of the update-mode table. */
    private static final class Slot {
        final RowData row;
        int count;
        int position;

        Slot(RowData row, int position) {
            this.row = row;
            this.position = position;
        }
    }

    private final TableResultInternal result;
    private final CloseableIterator iterator;
    private final RowType rowType;
    private final int mode;
    private final int maxRows;
    // fair: a snapshot waiting for the lock gets it next, not after the drain's next rows
    private final ReentrantLock lock = new ReentrantLock(true);
    private final Object arrowLock = new Object();

    // update mode: row -> slot; slots by position (null: free); free positions, last freed on top
    private final HashMap index = new HashMap();
    private final ArrayList slots = new ArrayList();
    private int[] free = new int[16];
    private int freeCount;
    private long held;
    // append mode
    private final ArrayDeque newest = new ArrayDeque();
    // single mode
    private RowData last;

    private long received;
    private long dropped;
    private long retractions;
    private long version;
    private volatile boolean done;
    private volatile boolean closed;
    private String error;
    private String errorTrace;
    private String jobStatus;
    private long snapshotNanos;

    // snapshot scratch space, used under arrowLock only
    private Object[] scratch = new Object[0];
    private BufferAllocator allocator;
    private VectorSchemaRoot root;
    private ArrowWriter writer;
    private final ByteArrayOutputStream out = new ByteArrayOutputStream();
    private final Thread thread;

    public LiveResult(TableResultInternal result, RowType rowType, int mode, int maxRows) {
        ArrowUtils.checkArrowUsable();
        this.result = result;
        this.iterator = result.collectInternal();
        this.rowType = rowType;
        this.mode = mode;
        this.maxRows = maxRows;
        this.thread = new Thread(this, "jupyter-flink-live-result");
        this.thread.setDaemon(true);
    }

    public void start() {
        thread.start();
    }

    /** The first column whose type cannot travel as Arrow ("name\tTYPE"), or null. */
    public static String unsupportedColumn(RowType rowType) {
        // Before anything touches Arrow: it sets the property Arrow's (shaded) netty reads once,
        // when it initializes. Otherwise PyFlink's own Arrow use (to_pandas) fails afterwards.
        ArrowUtils.checkArrowUsable();
        for (int i = 0; i < rowType.getFieldCount(); i++) {
            List single = new ArrayList();
            single.add(rowType.getFields().get(i));
            try {
                RowType one = new RowType(single);
                ArrowUtils.toArrowSchema(one);
                BufferAllocator probe = ArrowUtils.getRootAllocator().newChildAllocator(
                        "jupyter-flink-probe", 0, Long.MAX_VALUE);
                VectorSchemaRoot vectors = VectorSchemaRoot.create(ArrowUtils.toArrowSchema(one), probe);
                try {
                    ArrowUtils.createRowDataArrowWriter(vectors, one);
                } finally {
                    vectors.close();
                    probe.close();
                }
            } catch (RuntimeException e) {
                return rowType.getFieldNames().get(i) + "\t" + rowType.getTypeAt(i).asSummaryString();
            }
        }
        return null;
    }

    // ------------------------------------------------------------------ draining

    public void run() {
        Throwable failure = null;
        // An update arrives as -U then +U: the -U waits for its +U so that both are applied
        // at once and no snapshot shows the row missing in between.
        RowData pending = null;
        try {
            while (!closed && iterator.hasNext()) {
                RowData row = (RowData) iterator.next();
                boolean before = row.getRowKind() == RowKind.UPDATE_BEFORE;
                if (before && pending == null) {
                    pending = row;
                    continue;
                }
                lock.lock();
                try {
                    if (pending != null) {
                        apply(pending);
                        pending = null;
                    }
                    if (before) {
                        pending = row;
                    } else {
                        apply(row);
                    }
                    version++;
                } finally {
                    lock.unlock();
                }
            }
        } catch (Throwable t) {
            failure = t;
        }
        String status = closed ? null : currentJobStatus();
        lock.lock();
        try {
            if (pending != null) {
                apply(pending);
            }
            if (failure != null && !closed) {
                error = summary(failure);
                StringWriter trace = new StringWriter();
                failure.printStackTrace(new PrintWriter(trace));
                errorTrace = trace.toString();
            }
            jobStatus = status;
            done = true;
            version++;
        } finally {
            lock.unlock();
        }
    }

    private String currentJobStatus() {
        try {
            Optional client = result.getJobClient();
            if (!client.isPresent()) {
                return null;
            }
            JobStatus status = (JobStatus) ((JobClient) client.get()).getJobStatus()
                    .get(10, TimeUnit.SECONDS);
            return status.name();
        } catch (Throwable t) {
            return null;
        }
    }

    /** The deepest "SimpleName: message" of a cause chain: usually the one worth reading. */
    static String summary(Throwable failure) {
        String best = null;
        Throwable cause = failure;
        for (int depth = 0; cause != null && depth < 50; depth++) {
            // SerializedThrowable (a cause that crossed an RPC) prints as the original class.
            String text = cause.toString();
            int colon = text.indexOf(": ");
            String name = colon < 0 ? text : text.substring(0, colon);
            String message = colon < 0 ? "" : text.substring(colon + 2).trim();
            if (message.length() > 0) {
                best = name.substring(name.lastIndexOf('.') + 1) + ": " + message;
            }
            Throwable next = cause.getCause();
            cause = next == cause ? null : next;
        }
        return best != null ? best : failure.getClass().getSimpleName();
    }

    private void apply(RowData row) {
        RowKind kind = row.getRowKind();
        boolean adds = kind == RowKind.INSERT || kind == RowKind.UPDATE_AFTER;
        // Rows compare equal whatever their kind, as in Flink's SQL client.
        row.setRowKind(RowKind.INSERT);
        received++;
        if (!adds) {
            retractions++;
        }
        if (mode == UPDATE) {
            applyUpdate(row, adds);
        } else if (mode == APPEND) {
            if (adds) {
                newest.addLast(row);
                if (newest.size() > maxRows) {
                    newest.removeFirst();
                    dropped++;
                }
            }
        } else if (adds) {
            last = row;
        } else if (kind == RowKind.DELETE && last != null && last.equals(row)) {
            last = null;  // (an UPDATE_BEFORE is followed by the row that replaces it)
        }
    }

    // One hash lookup per changelog row: this runs for every row of a busy stream, and
    // comparing a row with the one stored (written long ago, so not in the CPU cache) is
    // what it costs most.
    private void applyUpdate(RowData row, boolean adds) {
        if (adds) {
            if (held >= maxRows) {
                dropped++;
                return;
            }
            Slot fresh = new Slot(row, -1);
            Slot slot = (Slot) index.putIfAbsent(row, fresh);
            if (slot == null) {
                slot = fresh;
                if (freeCount > 0) {
                    slot.position = free[--freeCount];
                    slots.set(slot.position, slot);
                } else {
                    slot.position = slots.size();
                    slots.add(slot);
                }
            }
            slot.count++;
            held++;
            return;
        }
        Slot slot = (Slot) index.remove(row);
        if (slot == null) {
            return;  // a row that was dropped (maxRows), or retracted already
        }
        held--;
        if (--slot.count > 0) {
            index.put(slot.row, slot);  // a duplicate row: one copy goes
            return;
        }
        slots.set(slot.position, null);
        if (freeCount == free.length) {
            free = Arrays.copyOf(free, free.length * 2);
        }
        free[freeCount++] = slot.position;
    }

    // ------------------------------------------------------------------ snapshots

    /**
     * Writes the header and Arrow stream of the current result to {@code path}; returns its
     * size, or -1 (writing nothing) if nothing changed since {@code seen}.
     *
     * <p>A file (on tmpfs where there is one) rather than a returned byte[]: py4j sends byte
     * arrays base64-encoded through its text protocol, ~30 ms for 120 KB; the file costs ~0.4 ms.
     */
    public long snapshotTo(long seen, String path) throws Exception {
        synchronized (arrowLock) {
            long started = System.nanoTime();
            int rows;
            String header;
            lock.lock();
            try {
                if (version == seen) {
                    return -1;
                }
                rows = collectRows();
                header = header(rows);
            } finally {
                lock.unlock();
            }
            try {
                if (root == null) {
                    allocator = ArrowUtils.getRootAllocator().newChildAllocator(
                            "jupyter-flink-live", 0, Long.MAX_VALUE);
                    root = VectorSchemaRoot.create(ArrowUtils.toArrowSchema(rowType), allocator);
                    writer = ArrowUtils.createRowDataArrowWriter(root, rowType);
                }
                writer.reset();
                for (int i = 0; i < rows; i++) {
                    writer.write(scratch[i]);
                }
                writer.finish();
            } finally {
                Arrays.fill(scratch, 0, rows, null);  // the result may drop these rows
            }
            out.reset();
            byte[] head = header.getBytes(StandardCharsets.UTF_8);
            out.write(head.length >>> 24);
            out.write(head.length >>> 16);
            out.write(head.length >>> 8);
            out.write(head.length);
            out.write(head, 0, head.length);
            ArrowStreamWriter stream = new ArrowStreamWriter(root, null, out);
            stream.start();
            stream.writeBatch();
            stream.end();
            stream.close();
            FileOutputStream file = new FileOutputStream(path);
            try {
                out.writeTo(file);
            } finally {
                file.close();
            }
            snapshotNanos = System.nanoTime() - started;
            return out.size();
        }
    }

    /** Copies the rows to show into {@code scratch} (while holding {@code lock}); returns how many. */
    private int collectRows() {
        int size = mode == UPDATE ? (int) held : mode == APPEND ? newest.size() : (last == null ? 0 : 1);
        if (scratch.length < size) {
            scratch = new Object[Math.max(size, scratch.length * 2)];
        }
        int n = 0;
        if (mode == UPDATE) {
            for (int i = 0; i < slots.size(); i++) {
                Slot slot = (Slot) slots.get(i);
                if (slot != null) {
                    for (int c = 0; c < slot.count; c++) {
                        scratch[n++] = slot.row;
                    }
                }
            }
        } else if (mode == APPEND) {
            Iterator rows = newest.iterator();
            while (rows.hasNext()) {
                scratch[n++] = rows.next();
            }
        } else if (last != null) {
            scratch[n++] = last;
        }
        return n;
    }

    private String header(int rows) {
        StringBuilder json = new StringBuilder(256);
        json.append("{\"version\":").append(version)
                .append(",\"received\":").append(received)
                .append(",\"dropped\":").append(dropped)
                .append(",\"retractions\":").append(retractions)
                .append(",\"rows\":").append(rows)
                .append(",\"done\":").append(done)
                .append(",\"snapshot_ns\":").append(snapshotNanos)
                .append(",\"job_status\":");
        quote(json, jobStatus);
        json.append(",\"error\":");
        quote(json, error);
        json.append(",\"error_trace\":");
        quote(json, errorTrace);
        return json.append('}').toString();
    }

    private static void quote(StringBuilder json, String text) {
        if (text == null) {
            json.append("null");
            return;
        }
        json.append('"');
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (c == '"' || c == '\\') {
                json.append('\\').append(c);
            } else if (c < 0x20) {
                String hex = Integer.toHexString(c);
                json.append("\\u");
                for (int pad = hex.length(); pad < 4; pad++) {
                    json.append('0');
                }
                json.append(hex);
            } else {
                json.append(c);
            }
        }
        json.append('"');
    }

    // ------------------------------------------------------------------ lifecycle

    public boolean isDone() {
        return done;
    }

    /** Stop draining; closing Flink's iterator cancels the job if it still runs. */
    public void close() throws Exception {
        closed = true;
        try {
            iterator.close();
        } finally {
            release();
        }
    }

    /** Forget the rows and free the Arrow buffers (the last snapshot was taken). */
    public void release() {
        synchronized (arrowLock) {
            lock.lock();
            try {
                index.clear();
                slots.clear();
                newest.clear();
                last = null;
                held = 0;
                freeCount = 0;
            } finally {
                lock.unlock();
            }
            scratch = new Object[0];
            if (root != null) {
                root.close();
                allocator.close();
                root = null;
                allocator = null;
                writer = null;
            }
        }
    }
}
