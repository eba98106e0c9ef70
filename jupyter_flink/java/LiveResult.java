package jupyterflink;

import java.io.ByteArrayOutputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.apache.flink.api.python.shaded.org.apache.arrow.memory.BufferAllocator;
import org.apache.flink.api.python.shaded.org.apache.arrow.vector.VectorSchemaRoot;
import org.apache.flink.api.python.shaded.org.apache.arrow.vector.ipc.ArrowStreamWriter;
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
 * changelog as fast as Flink delivers it and applies it to a bounded in-memory result: the
 * materialized table (update mode), the newest rows (append mode) or the last row (single
 * mode). Python fetches a snapshot as one Arrow IPC stream only when it refreshes the display.
 *
 * <p>Compiled at run time by Janino (bundled with Flink), so: no lambdas, no generics checks.
 */
public class LiveResult implements Runnable {
    public static final int UPDATE = 0;
    public static final int APPEND = 1;
    public static final int SINGLE = 2;

    private final CloseableIterator iterator;
    private final RowType rowType;
    private final int mode;
    private final int maxRows;
    private final Object lock = new Object();
    // update mode: a multiset of rows (row -> int[1] count), in first-seen order
    private final LinkedHashMap counts = new LinkedHashMap();
    private final ArrayDeque newest = new ArrayDeque();
    private RowData last;
    private long received;
    private long dropped;
    private long retractions;
    private long version;
    private volatile boolean done;
    private volatile boolean closed;
    private volatile String error;
    private final Thread thread;

    public LiveResult(TableResultInternal result, RowType rowType, int mode, int maxRows) {
        this.iterator = result.collectInternal();
        this.rowType = rowType;
        this.mode = mode;
        this.maxRows = maxRows;
        this.thread = new Thread(this, "jupyter-flink-live-result");
        this.thread.setDaemon(true);
        this.thread.start();
    }

    /** Checks that every column can travel as Arrow; returns null or the offending column. */
    public static String unsupportedColumn(RowType rowType) {
        for (int i = 0; i < rowType.getFieldCount(); i++) {
            List single = new ArrayList();
            single.add(rowType.getFields().get(i));
            try {
                ArrowUtils.toArrowSchema(new RowType(single));
            } catch (RuntimeException e) {
                return rowType.getFieldNames().get(i) + " " + rowType.getTypeAt(i).asSummaryString();
            }
        }
        return null;
    }

    public void run() {
        try {
            while (!closed && iterator.hasNext()) {
                RowData row = (RowData) iterator.next();
                synchronized (lock) {
                    apply(row);
                    received++;
                    version++;
                }
            }
        } catch (Throwable t) {
            if (!closed) {
                StringWriter trace = new StringWriter();
                t.printStackTrace(new PrintWriter(trace));
                error = trace.toString();
            }
        } finally {
            done = true;
            synchronized (lock) {
                version++;
            }
        }
    }

    private void apply(RowData row) {
        RowKind kind = row.getRowKind();
        boolean adds = kind == RowKind.INSERT || kind == RowKind.UPDATE_AFTER;
        // Rows compare equal whatever their kind, as in Flink's SQL client.
        row.setRowKind(RowKind.INSERT);
        if (!adds) {
            retractions++;
        }
        if (mode == SINGLE) {
            if (adds) {
                last = row;
            }
        } else if (mode == APPEND) {
            if (adds) {
                newest.addLast(row);
                if (newest.size() > maxRows) {
                    newest.removeFirst();
                    dropped++;
                }
            }
        } else {
            int[] count = (int[]) counts.get(row);
            if (adds) {
                if (count != null) {
                    count[0]++;
                } else if (counts.size() < maxRows) {
                    counts.put(row, new int[] {1});
                } else {
                    dropped++;
                }
            } else if (count != null) {
                count[0]--;
                if (count[0] == 0) {
                    counts.remove(row);
                }
            }
        }
    }

    /** The current result as an Arrow IPC stream, or null if nothing changed since {@code seen}. */
    public byte[] snapshot(long seen) throws Exception {
        List rows = new ArrayList();
        synchronized (lock) {
            if (version == seen) {
                return null;
            }
            if (mode == SINGLE) {
                if (last != null) {
                    rows.add(last);
                }
            } else if (mode == APPEND) {
                rows.addAll(newest);
            } else {
                Iterator entries = counts.entrySet().iterator();
                while (entries.hasNext()) {
                    Map.Entry entry = (Map.Entry) entries.next();
                    int n = ((int[]) entry.getValue())[0];
                    for (int i = 0; i < n; i++) {
                        rows.add(entry.getKey());
                    }
                }
            }
        }
        return toArrow(rows);
    }

    private byte[] toArrow(List rows) throws Exception {
        BufferAllocator allocator =
                ArrowUtils.getRootAllocator().newChildAllocator("jupyter-flink-live", 0, Long.MAX_VALUE);
        VectorSchemaRoot root = VectorSchemaRoot.create(ArrowUtils.toArrowSchema(rowType), allocator);
        try {
            ArrowWriter writer = ArrowUtils.createRowDataArrowWriter(root, rowType);
            for (int i = 0; i < rows.size(); i++) {
                writer.write((RowData) rows.get(i));
            }
            writer.finish();
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            ArrowStreamWriter stream = new ArrowStreamWriter(root, null, out);
            stream.start();
            stream.writeBatch();
            stream.end();
            stream.close();
            return out.toByteArray();
        } finally {
            root.close();
            allocator.close();
        }
    }

    public long version() {
        synchronized (lock) {
            return version;
        }
    }

    /** "received dropped retractions held": one py4j call (a long[] costs one per element). */
    public String counters() {
        synchronized (lock) {
            long held = mode == UPDATE ? counts.size() : mode == APPEND ? newest.size() : (last == null ? 0 : 1);
            return received + " " + dropped + " " + retractions + " " + held;
        }
    }

    public boolean isDone() {
        return done;
    }

    public String error() {
        return error;
    }

    public void close() throws Exception {
        closed = true;
        iterator.close();
    }
}
