// ClientTest drives Spate through pgjdbc (libpostgresql-jdbc-java) as a
// Java application or a JDBC-based tool (DBeaver, Metabase, Grafana) does.
// cmd/spate/clients_test.go compiles and runs it and checks what it prints.
//
// Connection: the libpq environment variables PGHOST, PGPORT, PGUSER and
// PGDATABASE. SPATE_SUB_INSERT is the INSERT the SUBSCRIBE step runs on a
// second connection while its cursor is open.
//
// Output: one record a line, fields separated by tabs, NULL as \N.
// "step <name>" starts a step; "error <message>" reports that the step
// failed (the next step still runs); every other line is a result of the
// current step, its first field saying what it is.
import java.sql.*;
import java.time.format.DateTimeFormatter;
import java.util.*;
import org.postgresql.util.PGInterval;

public class ClientTest {
  static final DateTimeFormatter TS = DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss");

  interface Step { void run() throws Exception; }

  static void step(String name, Step s) {
    System.out.println("step\t" + name);
    try {
      s.run();
    } catch (Throwable e) {
      String msg = e.toString();
      if (e instanceof SQLException && ((SQLException) e).getSQLState() != null) {
        msg = ((SQLException) e).getSQLState() + " " + msg;
      }
      System.out.println("error\t" + clean(msg));
    }
    System.out.flush();
  }

  static String clean(String s) {
    return s.replace("\\", "\\\\").replace("\t", " ").replace("\r", "").replace("\n", " | ");
  }

  static void out(Object... fields) {
    StringBuilder b = new StringBuilder();
    for (int i = 0; i < fields.length; i++) {
      if (i > 0) b.append('\t');
      b.append(fields[i] == null ? "\\N" : clean(fields[i].toString()));
    }
    System.out.println(b);
  }

  // value renders a column of the current row from the Java type pgjdbc
  // maps it to, so that the test checks that mapping.
  static String value(ResultSet rs, int i) throws SQLException {
    Object o = rs.getObject(i);
    if (o == null) return null;
    if (o instanceof Timestamp) return ((Timestamp) o).toLocalDateTime().format(TS);
    if (o instanceof PGInterval) {
      PGInterval iv = (PGInterval) o;
      double secs = ((iv.getYears() * 12 + iv.getMonths()) * 30.0 + iv.getDays()) * 86400
          + iv.getHours() * 3600 + iv.getMinutes() * 60 + iv.getSeconds();
      return Long.toString(Math.round(secs));
    }
    return o.toString();
  }

  // rows prints the column metadata ("col name typeName sqlType className")
  // and the rows ("row v1 v2 …") of a result.
  static int rows(ResultSet rs, String kind, boolean meta) throws SQLException {
    ResultSetMetaData m = rs.getMetaData();
    int n = m.getColumnCount();
    if (meta) {
      for (int i = 1; i <= n; i++) {
        out("col", m.getColumnName(i), m.getColumnTypeName(i), m.getColumnType(i), m.getColumnClassName(i));
      }
    }
    int count = 0;
    while (rs.next()) {
      Object[] f = new Object[n + 1];
      f[0] = kind;
      for (int i = 1; i <= n; i++) f[i] = value(rs, i);
      out(f);
      count++;
    }
    return count;
  }

  static Connection connect() throws SQLException {
    String url = "jdbc:postgresql://" + env("PGHOST", "127.0.0.1") + ":" + env("PGPORT", "5433") + "/" + env("PGDATABASE", "spate");
    Properties p = new Properties();
    p.setProperty("user", env("PGUSER", "spate"));
    p.setProperty("ApplicationName", "spate-jdbc-test");
    return DriverManager.getConnection(url, p);
  }

  static String env(String k, String d) {
    String v = System.getenv(k);
    return v == null || v.isEmpty() ? d : v;
  }

  static Connection conn;

  public static void main(String[] args) throws Exception {
    step("connect", () -> {
      conn = connect();
      DatabaseMetaData md = conn.getMetaData();
      out("server", md.getDatabaseProductName(), md.getDatabaseProductVersion());
    });
    if (conn == null) return;
    DatabaseMetaData md = conn.getMetaData();

    step("getTables", () -> {
      try (ResultSet rs = md.getTables(null, null, "%", null)) {
        while (rs.next()) out("table", rs.getString("TABLE_SCHEM"), rs.getString("TABLE_NAME"), rs.getString("TABLE_TYPE"));
      }
    });
    step("getTablesTyped", () -> {
      try (ResultSet rs = md.getTables(null, "public", "%", new String[] {"TABLE", "MATERIALIZED VIEW"})) {
        while (rs.next()) out("table", rs.getString("TABLE_SCHEM"), rs.getString("TABLE_NAME"), rs.getString("TABLE_TYPE"));
      }
    });
    step("getTableTypes", () -> {
      try (ResultSet rs = md.getTableTypes()) {
        while (rs.next()) out("type", rs.getString(1));
      }
    });
    step("getSchemas", () -> {
      try (ResultSet rs = md.getSchemas()) {
        while (rs.next()) out("schema", rs.getString("TABLE_SCHEM"));
      }
    });
    for (String rel : new String[] {"readings", "sites", "per_site", "hot"}) {
      step("getColumns " + rel, () -> {
        try (ResultSet rs = md.getColumns(null, "public", rel, "%")) {
          while (rs.next()) {
            out("column", rs.getString("TABLE_NAME"), rs.getString("COLUMN_NAME"), rs.getString("TYPE_NAME"),
                rs.getInt("DATA_TYPE"), rs.getInt("ORDINAL_POSITION"));
          }
        }
      });
    }
    step("getPrimaryKeys sites", () -> {
      try (ResultSet rs = md.getPrimaryKeys(null, "public", "sites")) {
        while (rs.next()) out("pk", rs.getString("TABLE_NAME"), rs.getString("COLUMN_NAME"), rs.getInt("KEY_SEQ"));
      }
    });
    step("getIndexInfo sites", () -> {
      try (ResultSet rs = md.getIndexInfo(null, "public", "sites", false, false)) {
        while (rs.next()) out("index", rs.getString("TABLE_NAME"), rs.getString("COLUMN_NAME"), rs.getBoolean("NON_UNIQUE"), rs.getInt("ORDINAL_POSITION"));
      }
    });
    step("getTypeInfo", () -> {
      try (ResultSet rs = md.getTypeInfo()) {
        while (rs.next()) out("type", rs.getString("TYPE_NAME"), rs.getInt("DATA_TYPE"));
      }
    });

    step("select per_site", () -> {
      try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery("SELECT site, n, total, last_seq FROM per_site ORDER BY site")) {
        rows(rs, "row", true);
      }
    });
    step("select hot", () -> {
      try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery("SELECT * FROM hot ORDER BY seq")) {
        rows(rs, "row", true);
      }
    });
    step("resultSetMetaData", () -> {
      // isNullable and getTableName make pgjdbc look the result's columns
      // up in pg_attribute and pg_class.
      try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery("SELECT site, n FROM per_site")) {
        ResultSetMetaData m = rs.getMetaData();
        for (int i = 1; i <= m.getColumnCount(); i++) {
          out("meta", m.getColumnName(i), m.getTableName(i), m.isNullable(i), m.isAutoIncrement(i));
        }
      }
    });
    step("prepared", () -> {
      try (PreparedStatement ins = conn.prepareStatement("INSERT INTO sites VALUES (?, ?, ?)")) {
        ins.setString(1, "west");
        ins.setString(2, "sa");
        ins.setInt(3, 7);
        out("inserted", ins.executeUpdate());
      }
      // Executed more than prepareThreshold (5) times: pgjdbc switches from
      // unnamed to named server-side prepared statements.
      try (PreparedStatement ps = conn.prepareStatement("SELECT site, n, total, last_seq FROM per_site WHERE site = ? AND n >= ?")) {
        for (int k = 0; k < 7; k++) {
          ps.setString(1, "north");
          ps.setLong(2, 1);
          try (ResultSet rs = ps.executeQuery()) {
            while (rs.next()) {
              out("row", k, rs.getString(1), rs.getLong(2), rs.getDouble(3), rs.getLong(4));
            }
          }
        }
      }
      try (PreparedStatement ps = conn.prepareStatement("SELECT region, capacity FROM sites WHERE site = ?")) {
        ps.setString(1, "west");
        try (ResultSet rs = ps.executeQuery()) {
          while (rs.next()) out("site", rs.getString(1), rs.getInt(2));
        }
      }
    });

    step("subscribe", () -> {
      conn.setAutoCommit(false);
      try (Statement st = conn.createStatement()) {
        st.execute("DECLARE c CURSOR FOR SUBSCRIBE per_site");
        try (ResultSet rs = st.executeQuery("FETCH 10 FROM c WITH (timeout = '1s')")) {
          rows(rs, "sub", true);
        }
        try (Connection other = connect(); Statement ins = other.createStatement()) {
          ins.executeUpdate(System.getenv("SPATE_SUB_INSERT"));
        }
        // The change is a "-" of the old row and a "+" of the new one.
        int got = 0;
        for (int k = 0; k < 10 && got < 2; k++) {
          try (ResultSet rs = st.executeQuery("FETCH 10 FROM c WITH (timeout = '1s')")) {
            got += rows(rs, "change", false);
          }
        }
        st.execute("CLOSE c");
      } finally {
        conn.commit();
        conn.setAutoCommit(true);
      }
    });
    conn.close();
  }
}
