/**
 * The classic psycopg2 connection-pool tutorial, ported line by line. Each
 * step has the psycopg2 original in a comment above it.
 *
 * ```sh
 * DATABASE_URL=postgres://... deno run -A examples/psycopg2_port.ts
 * ```
 *
 * What changes when porting: every pool call is awaited; there are no cursors
 * (`conn.query(sql, params)` returns `{ rows }`); `$1` placeholders replace
 * `%s`; node-postgres runs in autocommit mode, so nothing is inside a
 * transaction unless you `BEGIN` (psycopg2 opens one implicitly).
 *
 * @module
 */
// import psycopg2
// from psycopg2 import pool
// In your app: import { SimpleConnectionPool } from "@tidepool/pg";
import { SimpleConnectionPool } from "../mod.ts";

// postgreSQL_pool = None
let postgreSQLPool: SimpleConnectionPool | undefined;
// try:
try {
  //     postgreSQL_pool = psycopg2.pool.SimpleConnectionPool(1, 20, user="postgres",
  //                                                          password="pass@#29", host="127.0.0.1",
  //                                                          port="5432", database="postgres_db")
  // (psycopg2 connects minconn connections in the constructor; open() does it here,
  //  or the first getconn() does it for you.)
  postgreSQLPool = new SimpleConnectionPool(1, 20, Deno.env.get("DATABASE_URL")!);
  await postgreSQLPool.open();
  //     if (postgreSQL_pool):
  //         print("Connection pool created successfully")
  console.log("Connection pool created successfully");

  //     # Use getconn() to Get Connection from connection pool
  //     ps_connection = postgreSQL_pool.getconn()
  const psConnection = await postgreSQLPool.getconn();

  //     if (ps_connection):
  //         print("successfully recived connection from connection pool ")
  console.log("successfully received connection from connection pool");
  try {
    // (The tutorial reads an existing `mobile` table; a temporary one keeps this demo self-contained.)
    await psConnection.query("create temp table mobile (id int, model text, price numeric)");
    await psConnection.query(
      "insert into mobile values ($1, $2, $3), ($4, $5, $6)",
      [1, "IPhone 12", 1100, 2, "Google Pixel 2", 700],
    );

    //         ps_cursor = ps_connection.cursor()
    //         ps_cursor.execute("select * from mobile")
    //         mobile_records = ps_cursor.fetchall()
    const { rows: mobileRecords } = await psConnection.query("select * from mobile order by id");

    //         print("Displaying rows from mobile table")
    //         for row in mobile_records:
    //             print(row)
    console.log("Displaying rows from mobile table");
    for (const row of mobileRecords) console.log(row.id, row.model, row.price);

    //         ps_cursor.close()
    // (no cursor to close)
  } finally {
    //         # Use this method to release the connection object and send back to connection pool
    //         postgreSQL_pool.putconn(ps_connection)
    // (in a finally, so an error in the queries cannot leak the connection; `await using`
    //  would do the same: `await using psConnection = await postgreSQLPool.getconn()`)
    await postgreSQLPool.putconn(psConnection);
    //         print("Put away a PostgreSQL connection")
    console.log("Put away a PostgreSQL connection");
  }
  // except (Exception, psycopg2.DatabaseError) as error:
  //     print("Error while connecting to PostgreSQL", error)
} catch (error) {
  console.error("Error while connecting to PostgreSQL", error instanceof Error ? error.message : error);
  Deno.exitCode = 1;
} finally {
  // finally:
  //     # use closeAll method to close all the active connection if you want to turn of the application
  //     if postgreSQL_pool:
  //         postgreSQL_pool.closeall
  // (the tutorial forgets the parentheses, so it never closes anything; here it is a real call)
  if (postgreSQLPool && !postgreSQLPool.closed) await postgreSQLPool.closeall();
  //     print("PostgreSQL connection pool is closed")
  console.log("PostgreSQL connection pool is closed");
}
