// ClientTest drives Spate through pgjdbc (libpostgresql-jdbc-java) as a
// Java application or a JDBC-based tool (DBeaver, Metabase, Grafana) does.
// cmd/spate/clients_test.go compiles and runs it and checks what it prints.
//
// Connection: the libpq environment variables PGHOST, PGPORT, PGUSER and
// PGDATABASE. SPATE_RELATIONS lists the relations whose columns it reads;
// SPATE_SUB_INSERT is the INSERT the SUBSCRIBE step runs on a second
// connection while its cursor is open.
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
    for (String rel : env("SPATE_RELATIONS", "readings,sites,per_site,hot").split(",")) {
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
    step("getImportedKeys sites", () -> {
      try (ResultSet rs = md.getImportedKeys(null, "public", "sites")) {
        while (rs.next()) out("fk", rs.getString("PKTABLE_NAME"), rs.getString("FKCOLUMN_NAME"));
      }
      try (ResultSet rs = md.getExportedKeys(null, "public", "sites")) {
        while (rs.next()) out("fk", rs.getString("FKTABLE_NAME"), rs.getString("FKCOLUMN_NAME"));
      }
    });
    step("getCatalogs", () -> {
      try (ResultSet rs = md.getCatalogs()) {
        while (rs.next()) out("catalog", rs.getString("TABLE_CAT"));
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
    step("fetchSize", () -> {
      // With auto-commit off and a fetch size, pgjdbc reads the result in
      // pieces: Execute with a row limit, PortalSuspended, Execute again.
      conn.setAutoCommit(false);
      try (Statement st = conn.createStatement()) {
        st.setFetchSize(3);
        try (ResultSet rs = st.executeQuery("SELECT * FROM hot ORDER BY seq")) {
          rows(rs, "row", false);
        }
      } finally {
        conn.commit();
        conn.setAutoCommit(true);
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

    step("batch and copy", () -> {
      // addBatch/executeBatch (several Bind/Execute before one Sync), and
      // CopyManager.copyIn, into the table sites; then read them back.
      try (PreparedStatement ins = conn.prepareStatement("INSERT INTO sites VALUES (?, ?, ?)")) {
        for (int k = 1; k <= 3; k++) {
          ins.setString(1, "batch" + k);
          ins.setString(2, "xb");
          ins.setInt(3, k * 10);
          ins.addBatch();
        }
        int[] counts = ins.executeBatch();
        out("batch", counts.length, Arrays.stream(counts).sum());
      }
      org.postgresql.copy.CopyManager cm = conn.unwrap(org.postgresql.PGConnection.class).getCopyAPI();
      long n = cm.copyIn("COPY sites FROM STDIN (FORMAT csv)", new java.io.StringReader("copy1,xc,100\ncopy2,xc,200\n"));
      out("copied", n);
      try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery(
          "SELECT site, region, capacity FROM sites WHERE region = 'xb' OR region = 'xc' ORDER BY site")) {
        rows(rs, "site", false);
      }
    });
    step("subscribe", () -> {
      conn.setAutoCommit(false);
      try (Statement st = conn.createStatement()) {
        st.execute("DECLARE c CURSOR FOR SUBSCRIBE per_site");
        // The current rows, one per site (SPATE_SITES), maybe in pieces.
        int sites = Integer.parseInt(env("SPATE_SITES", "1"));
        int have = 0;
        for (int k = 0; k < 10 && have < sites; k++) {
          try (ResultSet rs = st.executeQuery("FETCH 10 FROM c WITH (timeout = '1s')")) {
            have += rows(rs, "sub", k == 0);
          }
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
    step("cancel", () -> {
      // Statement.cancel from another thread stops a FETCH that waits for
      // rows; the connection stays usable.
      conn.setAutoCommit(false);
      try (Statement st = conn.createStatement()) {
        st.execute("DECLARE w CURSOR FOR SUBSCRIBE per_site");
        st.executeQuery("FETCH ALL FROM w WITH (timeout = '1s')").close();
        // Cancel every 500 ms until the FETCH returns: a cancel that comes
        // before the FETCH is sent does nothing.
        java.util.concurrent.atomic.AtomicBoolean done = new java.util.concurrent.atomic.AtomicBoolean();
        Thread canceller = new Thread(() -> {
          try {
            while (!done.get()) {
              Thread.sleep(500);
              if (!done.get()) st.cancel();
            }
          } catch (Exception e) {
            out("cancelerror", e);
          }
        });
        canceller.start();
        long start = System.nanoTime();
        try {
          st.executeQuery("FETCH 10 FROM w").close();
          out("notcancelled");
        } catch (SQLException e) {
          out("cancelled", e.getSQLState(), (System.nanoTime() - start) / 1000000 < 30000);
        } finally {
          done.set(true);
        }
        canceller.join();
      } finally {
        conn.rollback();
        conn.setAutoCommit(true);
      }
      try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery("SELECT n FROM per_site WHERE site = 'east'")) {
        while (rs.next()) out("after", rs.getLong(1));
      }
    });
    conn.close();
  }
}
