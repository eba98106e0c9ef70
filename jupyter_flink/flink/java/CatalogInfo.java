package jupyterflink;

import java.lang.reflect.Field;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.table.api.internal.TableEnvironmentInternal;
import org.apache.flink.table.catalog.Catalog;
import org.apache.flink.table.catalog.CatalogManager;
import org.apache.flink.table.catalog.CatalogView;
import org.apache.flink.table.catalog.Column;
import org.apache.flink.table.catalog.ContextResolvedFunction;
import org.apache.flink.table.catalog.ContextResolvedTable;
import org.apache.flink.table.catalog.FunctionCatalog;
import org.apache.flink.table.catalog.ObjectIdentifier;
import org.apache.flink.table.catalog.ResolvedCatalogBaseTable;
import org.apache.flink.table.catalog.ResolvedSchema;
import org.apache.flink.table.catalog.UniqueConstraint;
import org.apache.flink.table.catalog.UnresolvedIdentifier;
import org.apache.flink.table.catalog.WatermarkSpec;
import org.apache.flink.table.functions.BuiltInFunctionDefinition;
import org.apache.flink.table.functions.FunctionDefinition;
import org.apache.flink.table.types.inference.TypeInferenceUtil;

/**
 * What completion and {@code %flink.catalog} ask a table environment, one py4j call each.
 *
 * <p>Each method answers in one string (JSON, or lines), so that Python never walks Java
 * collections element by element (a py4j round trip each), and never throws: a question
 * Flink cannot answer (a statement that does not parse, a catalog that is down) gets an
 * empty answer, since Tab must not fail.
 */
public class CatalogInfo {
    private final TableEnvironmentInternal tenv;
    private final ObjectMapper json = new ObjectMapper();

    public CatalogInfo(Object tenv) {
        this.tenv = (TableEnvironmentInternal) tenv;
    }

    /** Flink's planner's completion hints at {@code position} of {@code sql}, one per line. */
    public String hints(String sql, int position) {
        try {
            String[] hints = tenv.getParser().getCompletionHints(sql, position);
            return join(Arrays.asList(hints));
        } catch (Throwable error) {
            return "";
        }
    }

    /**
     * Catalogs, their databases and the tables and views in them (temporary ones included),
     * the current catalog and database, and the functions; columns too when {@code columns}
     * is true. At most {@code limit} tables and views are listed ("truncated" says so).
     */
    public String names(int limit, boolean columns) throws Exception {
        CatalogManager manager = tenv.getCatalogManager();
        Map result = new LinkedHashMap();
        result.put("catalog", manager.getCurrentCatalog());
        result.put("database", manager.getCurrentDatabase());
        List catalogs = new ArrayList();
        int listed = 0;
        boolean truncated = false;
        Iterator catalogNames = new TreeSet(manager.listCatalogs()).iterator();
        while (catalogNames.hasNext()) {
            String catalogName = (String) catalogNames.next();
            Map catalog = new LinkedHashMap();
            catalog.put("name", catalogName);
            List databases = new ArrayList();
            try {
                Optional found = manager.getCatalog(catalogName);
                if (found.isPresent()) {
                    Iterator databaseNames =
                            new TreeSet(((Catalog) found.get()).listDatabases()).iterator();
                    while (databaseNames.hasNext()) {
                        String databaseName = (String) databaseNames.next();
                        Map database = new LinkedHashMap();
                        database.put("name", databaseName);
                        List objects = new ArrayList();
                        if (listed < limit) {
                            Set views = manager.listViews(catalogName, databaseName);
                            Iterator tables =
                                    new TreeSet(manager.listTables(catalogName, databaseName)).iterator();
                            while (tables.hasNext()) {
                                String table = (String) tables.next();
                                if (listed >= limit) {
                                    truncated = true;
                                    break;
                                }
                                listed++;
                                Map object = new LinkedHashMap();
                                object.put("name", table);
                                object.put("kind", views.contains(table) ? "view" : "table");
                                if (columns) {
                                    object.put("columns", columnsOf(
                                            ObjectIdentifier.of(catalogName, databaseName, table)));
                                }
                                objects.add(object);
                            }
                        } else {
                            truncated = true;
                        }
                        database.put("objects", objects);
                        databases.add(database);
                    }
                }
            } catch (Throwable error) {
                catalog.put("error", String.valueOf(error.getMessage()));
            }
            catalog.put("databases", databases);
            catalogs.add(catalog);
        }
        result.put("catalogs", catalogs);
        result.put("truncated", Boolean.valueOf(truncated));
        result.put("functions", Arrays.asList(tenv.listUserDefinedFunctions()));
        result.put("all_functions", Arrays.asList(tenv.listFunctions()));
        return json.writeValueAsString(result);
    }

    /** The schema, options and (for a view) query of the table or view {@code path}; "" if none. */
    public String describe(String path) {
        try {
            CatalogManager manager = tenv.getCatalogManager();
            UnresolvedIdentifier unresolved = tenv.getParser().parseIdentifier(path);
            ObjectIdentifier identifier = manager.qualifyIdentifier(unresolved);
            Optional found = manager.getTable(identifier);
            if (!found.isPresent()) {
                return "";
            }
            ContextResolvedTable table = (ContextResolvedTable) found.get();
            ResolvedCatalogBaseTable resolved = (ResolvedCatalogBaseTable) table.getResolvedTable();
            ResolvedSchema schema = table.getResolvedSchema();
            Map result = new LinkedHashMap();
            result.put("identifier", identifier.asSummaryString());
            result.put("kind", resolved.getTableKind().name().toLowerCase());
            result.put("temporary", Boolean.valueOf(table.isTemporary()));
            result.put("comment", resolved.getComment());
            result.put("columns", columns(schema));
            List watermarks = new ArrayList();
            Iterator specs = schema.getWatermarkSpecs().iterator();
            while (specs.hasNext()) {
                WatermarkSpec spec = (WatermarkSpec) specs.next();
                Map watermark = new LinkedHashMap();
                watermark.put("column", spec.getRowtimeAttribute());
                watermark.put("expression", spec.getWatermarkExpression().asSummaryString());
                watermarks.add(watermark);
            }
            result.put("watermarks", watermarks);
            Optional key = schema.getPrimaryKey();
            if (key.isPresent()) {
                UniqueConstraint constraint = (UniqueConstraint) key.get();
                Map primaryKey = new LinkedHashMap();
                primaryKey.put("name", constraint.getName());
                primaryKey.put("columns", constraint.getColumns());
                result.put("primary_key", primaryKey);
            }
            Map options = new TreeMap();
            try {
                options.putAll(resolved.getOptions());
            } catch (Throwable error) {
                // views have no options
            }
            result.put("options", options);
            if (resolved instanceof CatalogView) {
                try {
                    result.put("query", ((CatalogView) resolved).getOriginalQuery());
                } catch (Throwable error) {
                    // a view made from a Table object in Python has no SQL text
                }
            }
            return json.writeValueAsString(result);
        } catch (Throwable error) {
            return "";
        }
    }

    /** The kind and signature of the function {@code name}; "" if there is none. */
    public String function(String name) {
        try {
            FunctionCatalog functions = functionCatalog();
            UnresolvedIdentifier identifier = tenv.getParser().parseIdentifier(name);
            Optional found = functions.lookupFunction(identifier);
            if (!found.isPresent()) {
                return "";
            }
            ContextResolvedFunction function = (ContextResolvedFunction) found.get();
            FunctionDefinition definition = function.getDefinition();
            Map result = new LinkedHashMap();
            result.put("name", name);
            result.put("kind", definition.getKind().name().toLowerCase());
            result.put("temporary", Boolean.valueOf(function.isTemporary()));
            result.put("builtin", Boolean.valueOf(definition instanceof BuiltInFunctionDefinition));
            result.put("class", definition.getClass().getName());
            try {
                String display = name.toUpperCase();
                if (!(definition instanceof BuiltInFunctionDefinition)) {
                    display = name;
                }
                result.put("signature", TypeInferenceUtil.generateSignature(
                        definition.getTypeInference(tenv.getCatalogManager().getDataTypeFactory()),
                        display, definition));
            } catch (Throwable error) {
                // some functions only Calcite can type
            }
            return json.writeValueAsString(result);
        } catch (Throwable error) {
            return "";
        }
    }

    private List columnsOf(ObjectIdentifier identifier) {
        try {
            Optional found = tenv.getCatalogManager().getTable(identifier);
            if (found.isPresent()) {
                return columns(((ContextResolvedTable) found.get()).getResolvedSchema());
            }
        } catch (Throwable error) {
            // a view whose query no longer resolves: no columns
        }
        return new ArrayList();
    }

    private static List columns(ResolvedSchema schema) {
        List columns = new ArrayList();
        Iterator all = schema.getColumns().iterator();
        while (all.hasNext()) {
            Column column = (Column) all.next();
            Map entry = new LinkedHashMap();
            entry.put("name", column.getName());
            entry.put("type", column.getDataType().getLogicalType().asSummaryString());
            Optional extras = column.explainExtras();
            entry.put("extras", extras.isPresent() ? extras.get() : null);
            Optional comment = column.getComment();
            entry.put("comment", comment.isPresent() ? comment.get() : null);
            columns.add(entry);
        }
        return columns;
    }

    private FunctionCatalog functionCatalog() throws Exception {
        Class type = tenv.getClass();
        while (type != null) {
            try {
                Field field = type.getDeclaredField("functionCatalog");
                field.setAccessible(true);
                return (FunctionCatalog) field.get(tenv);
            } catch (NoSuchFieldException missing) {
                type = type.getSuperclass();
            }
        }
        throw new IllegalStateException("no function catalog in " + tenv.getClass());
    }

    private static String join(List items) {
        StringBuilder out = new StringBuilder();
        Iterator all = items.iterator();
        while (all.hasNext()) {
            if (out.length() > 0) {
                out.append('\n');
            }
            out.append(String.valueOf(all.next()));
        }
        return out.toString();
    }
}
