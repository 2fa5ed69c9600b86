// Capture client for capture.sh: the statements pgjdbc sends (see parse_log.py).
import java.sql.*;
public class Cap {
  static void mark(Connection c, String s) throws Exception { try (Statement st = c.createStatement()) { st.execute("SELECT 'marker: " + s + "'"); } }
  public static void main(String[] a) throws Exception {
    Connection c = DriverManager.getConnection("jdbc:postgresql://127.0.0.1:5544/postgres?user=postgres&ApplicationName=jdbc");
    DatabaseMetaData md = c.getMetaData();
    mark(c, "getTables(null,null,\"%\",null)");
    try (ResultSet rs = md.getTables(null, null, "%", null)) { while (rs.next()) {} }
    mark(c, "getTables(null,\"public\",\"%\",{TABLE,MATERIALIZED VIEW})");
    try (ResultSet rs = md.getTables(null, "public", "%", new String[]{"TABLE","MATERIALIZED VIEW"})) { while (rs.next()) {} }
    mark(c, "getColumns(null,null,\"t\",null)");
    try (ResultSet rs = md.getColumns(null, null, "t", null)) { while (rs.next()) {} }
    mark(c, "getSchemas()");
    try (ResultSet rs = md.getSchemas()) { while (rs.next()) {} }
    mark(c, "getPrimaryKeys(null,null,\"t\")");
    try (ResultSet rs = md.getPrimaryKeys(null, null, "t")) { while (rs.next()) {} }
    mark(c, "getIndexInfo(null,null,\"t\",false,false)");
    try (ResultSet rs = md.getIndexInfo(null, null, "t", false, false)) { while (rs.next()) {} }
    mark(c, "getImportedKeys(null,null,\"t\")");
    try (ResultSet rs = md.getImportedKeys(null, null, "t")) { while (rs.next()) {} }
    mark(c, "getExportedKeys(null,null,\"t\")");
    try (ResultSet rs = md.getExportedKeys(null, null, "t")) { while (rs.next()) {} }
    mark(c, "getCatalogs()");
    try (ResultSet rs = md.getCatalogs()) { while (rs.next()) {} }
    mark(c, "getTypeInfo()");
    try (ResultSet rs = md.getTypeInfo()) { while (rs.next()) {} }
    mark(c, "getTableTypes()");
    try (ResultSet rs = md.getTableTypes()) { while (rs.next()) {} }
    mark(c, "PreparedStatement + ResultSetMetaData");
    try (PreparedStatement ps = c.prepareStatement("SELECT x, y FROM t WHERE x > ?")) {
      ps.setInt(1, 0);
      try (ResultSet rs = ps.executeQuery()) { ResultSetMetaData m = rs.getMetaData(); for (int i=1;i<=m.getColumnCount();i++){ m.getColumnTypeName(i); m.getColumnClassName(i); m.isNullable(i); m.getTableName(i); m.isAutoIncrement(i);} while (rs.next()) { rs.getObject(1); rs.getObject(2);} }
    }
    mark(c, "ResultSetMetaData of int4 int8 float8 bool timestamp interval text");
    try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery(
        "SELECT 1::int4 AS a, 2::int8 AS b, 1.5::float8 AS c, true AS d, TIMESTAMP '2026-01-01 00:00:00' AS e, INTERVAL '1 minute' AS f, 'x'::text AS g")) {
      ResultSetMetaData m = rs.getMetaData();
      for (int i = 1; i <= m.getColumnCount(); i++) { m.getColumnTypeName(i); m.getColumnClassName(i); m.getColumnType(i); }
      while (rs.next()) { for (int i = 1; i <= m.getColumnCount(); i++) rs.getObject(i); }
    }
    c.close();
  }
}
