// Package sqltest is Spate's SQL test harness: it starts real servers — a
// `spate serve` built from this module (StartSpate) and a throwaway
// PostgreSQL, the oracle (StartPostgres) — and runs sqllogictest-style
// scripts against a server (RunFile). It is for tests only, but is not a
// _test package so that tests of any package can use it.
//
// # Scripts
//
// A script is a sequence of records separated by blank lines. Lines whose
// first non-blank character is # are comments (except inside expected
// rows and copy data). Each record starts with a header line:
//
//	statement ok
//	statement error <SQLSTATE> [substring of the message]
//	    The SQL follows, up to a blank line; it may hold several
//	    statements separated by semicolons (one simple-protocol Query).
//	    The substring may also be in the error's DETAIL or CONTEXT.
//
//	query <types> [nosort|rowsort|valuesort] [columns=1,3,…]
//	<SQL, up to ---->
//	----
//	<expected rows, up to a blank line>
//	    types has one letter per column: I integer, R floating point
//	    (compared with a relative tolerance of 1e-9; write the value as
//	    PostgreSQL prints it), T text (any type compared as its text), B
//	    boolean (t / f). A column's type OID must fit its letter (I: int2,
//	    int4, int8, numeric; R: float4, float8, numeric; B: bool).
//	    Values are separated by spaces, or by tabs when a row contains a
//	    tab; a value containing spaces (a timestamp) is matched in space
//	    mode against as many words as the actual value has. NULL is
//	    written NULL and the empty string (empty). rowsort sorts the rows
//	    of both sides as text, valuesort sorts all values (words).
//	    columns= compares only the listed 1-based columns (for SHOW output
//	    with columns that are not the test's business); types then
//	    describes the listed columns. A query with no ---- expects no rows.
//
//	query error <SQLSTATE> [substring of the message]
//	<SQL, up to a blank line>
//
//	copy <relation>[(columns)] [csv|text] [header]
//	copy error <SQLSTATE> <relation>[(columns)] [csv|text] [header] [substring]
//	<data lines, up to a line \.>
//	    Sends the lines with COPY … FROM STDIN (text format unless csv) over
//	    the COPY sub-protocol. On success the command tag must count the
//	    rows of the data.
//
//	subscribe <continuous query> <n> <types> [nosort|rowsort]
//	----
//	<n expected rows>
//	    Starts COPY (SUBSCRIBE cq) TO STDOUT on a connection of its own and
//	    returns once the server has begun the COPY; a reader collects the
//	    first n rows in the background while the script goes on. The rows
//	    are checked at `subscribe wait <cq>` or at the end of the script,
//	    each given 15 s to arrive.
//
//	subscribe wait <continuous query>
//	sleep <Go duration>
//	halt                          stop the script here
//
// Expected results are written by a person from the semantics of SQL and
// of Spate's windows — never generated from the code under test.
//
// Results are read in text format through the simple query protocol, so
// what is compared is what psql prints.
package sqltest
