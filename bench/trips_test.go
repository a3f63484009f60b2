package bench

import (
	"context"
	"database/sql/driver"
	"fmt"
	"net"
	"sync/atomic"
)

// Round trips are counted where each database has them. A PostgreSQL
// client waits for the server once per exchange, so tripConn counts
// exchanges on the socket itself: whatever the driver does (a statement
// prepared on first use, a ping when a pooled connection has been idle)
// shows up. SQLite has no socket; a call into the engine is a statement, so
// countingConnector counts the statements database/sql hands the driver.

// tripConn is a connection to a server that counts round trips: a write
// after a read (or the first write) is the start of one, however many
// writes the request takes.
type tripConn struct {
	net.Conn
	trips   *atomic.Int64
	pending atomic.Bool // written since the last read
}

func (c *tripConn) Write(p []byte) (int, error) {
	if !c.pending.Swap(true) {
		c.trips.Add(1)
	}
	return c.Conn.Write(p)
}

func (c *tripConn) Read(p []byte) (int, error) {
	c.pending.Store(false)
	return c.Conn.Read(p)
}

// countingDial returns a dial function whose connections count their round
// trips in trips.
func countingDial(trips *atomic.Int64) func(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &tripConn{Conn: c, trips: trips}, nil
	}
}

// countingConnector opens the connections of its Connector wrapped so that
// every statement run on them (directly or prepared) adds one to trips.
//
// The wrappers have every optional interface that database/sql looks for
// and that modernc.org/sqlite's connections and statements have, and refuse
// a driver that lacks one: a wrapper that hid one would make database/sql
// take another path (prepare, run and close each statement instead of
// running it at once, for instance) and measure that instead.
type countingConnector struct {
	driver.Connector
	trips *atomic.Int64
}

// fullConn is what countingConn passes on.
type fullConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

// fullStmt is what countingStmt passes on.
type fullStmt interface {
	driver.Stmt
	driver.StmtExecContext
	driver.StmtQueryContext
}

var (
	_ fullConn = (*countingConn)(nil)
	_ fullStmt = (*countingStmt)(nil)
)

func (c countingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	fc, ok := conn.(fullConn)
	if !ok {
		conn.Close()
		return nil, fmt.Errorf("counting: %T lacks an interface database/sql would use", conn)
	}
	return &countingConn{fullConn: fc, trips: c.trips}, nil
}

// countingConn counts the statements run directly on a connection.
type countingConn struct {
	fullConn
	trips *atomic.Int64
}

// Unwrap returns the driver's connection (modernc.org/sqlite looks for it).
func (c *countingConn) Unwrap() driver.Conn { return c.fullConn }

func (c *countingConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *countingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	s, err := c.fullConn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	fs, ok := s.(fullStmt)
	if !ok {
		s.Close()
		return nil, fmt.Errorf("counting: %T lacks an interface database/sql would use", s)
	}
	return &countingStmt{fullStmt: fs, trips: c.trips}, nil
}

func (c *countingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	c.trips.Add(1)
	return c.fullConn.ExecContext(ctx, query, args)
}

func (c *countingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	c.trips.Add(1)
	return c.fullConn.QueryContext(ctx, query, args)
}

// countingStmt counts the runs of a prepared statement. database/sql uses
// the context methods when a statement has them, so only those count.
type countingStmt struct {
	fullStmt
	trips *atomic.Int64
}

func (s *countingStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	s.trips.Add(1)
	return s.fullStmt.ExecContext(ctx, args)
}

func (s *countingStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	s.trips.Add(1)
	return s.fullStmt.QueryContext(ctx, args)
}
