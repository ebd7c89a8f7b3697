package dbtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dripdrop/dripdrop/db"
	"github.com/dripdrop/dripdrop/db/internal/pgxuuid"
	"github.com/dripdrop/dripdrop/db/localpg"
)

// The Citus tests run on a coordinator and two workers, three managed local
// clusters in <repo>/.dripdrop/citus-{coord,w1,w2}, from a PostgreSQL whose
// installation has the citus extension: the one in $DRIPDROP_CITUS_BINDIR,
// or the default server binaries when citus is installed there. Without
// one they skip and say why (docs/scaling.md#testing-on-citus).

// CitusShards is the shard count of the test databases: enough for the
// tenants of a test to land on both workers.
const CitusShards = 8

type citusCluster struct {
	once    sync.Once
	coord   *localpg.Cluster
	workers [2]*localpg.Cluster
	err     error
}

var citusC = &citusCluster{}

// CitusBinDir is the bin directory of a PostgreSQL with the citus extension,
// or an error saying why there is none.
func CitusBinDir() (string, error) {
	bin := os.Getenv("DRIPDROP_CITUS_BINDIR")
	if bin == "" {
		var err error
		if bin, err = localpg.BinDir(); err != nil {
			return "", err
		}
	}
	out, err := osexec.Command(filepath.Join(bin, "pg_config"), "--sharedir", "--pkglibdir").Output()
	if err != nil {
		return "", fmt.Errorf("no pg_config in %s: %v", bin, err)
	}
	dirs := strings.Fields(string(out))
	if len(dirs) != 2 {
		return "", fmt.Errorf("%s/pg_config: unexpected answer %q", bin, out)
	}
	if _, err := os.Stat(filepath.Join(dirs[0], "extension", "citus.control")); err != nil {
		return "", fmt.Errorf("the PostgreSQL in %s has no citus extension (set DRIPDROP_CITUS_BINDIR to the bin directory of one that has)", bin)
	}
	if _, err := os.Stat(filepath.Join(dirs[1], "citus.so")); err != nil {
		return "", fmt.Errorf("the PostgreSQL in %s has citus.control but no citus.so", bin)
	}
	return bin, nil
}

// SkipWithoutCitus skips the test, saying why, when no Citus is installed
// (fails it instead under DRIPDROP_CITUS_REQUIRED=1, as make test-citus
// sets).
func SkipWithoutCitus(t testing.TB) {
	t.Helper()
	if _, err := CitusBinDir(); err != nil {
		if os.Getenv("DRIPDROP_CITUS_REQUIRED") != "" {
			t.Fatalf("Citus tests: %v", err)
		}
		t.Skipf("Citus tests skipped: %v", err)
	}
}

func (c *citusCluster) start() error {
	c.once.Do(func() {
		bin, err := CitusBinDir()
		if err != nil {
			c.err = err
			return
		}
		root, err := repoRoot()
		if err != nil {
			c.err = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		opts := localpg.Options{Fast: true, BinDir: bin, Settings: []string{
			"shared_preload_libraries=citus",
			"max_prepared_transactions=200", // two-phase commits across workers
			"citus.shard_replication_factor=1",
		}}
		if c.coord, err = localpg.Ensure(ctx, filepath.Join(root, ".dripdrop", "citus-coord"), opts); err != nil {
			c.err = err
			return
		}
		// Committed two-phase transactions stay listed in
		// pg_dist_transaction (no recovery pass removes them), so a test
		// can count the transactions that committed across workers.
		for _, q := range []string{"ALTER SYSTEM SET citus.recover_2pc_interval = -1", "SELECT pg_reload_conf()"} {
			if err := exec(ctx, c.coord.URL("postgres"), q); err != nil {
				c.err = err
				return
			}
		}
		for i := range c.workers {
			if c.workers[i], err = localpg.Ensure(ctx, filepath.Join(root, ".dripdrop", fmt.Sprintf("citus-w%d", i+1)), opts); err != nil {
				c.err = err
				return
			}
		}
	})
	return c.err
}

// CitusWorkerPorts are the ports of the two workers of the cluster.
func CitusWorkerPorts(t testing.TB) [2]int {
	t.Helper()
	if err := citusC.start(); err != nil {
		t.Fatalf("dbtest: citus: %v", err)
	}
	return [2]int{citusC.workers[0].Port, citusC.workers[1].Port}
}

// CitusURL is URL on the Citus cluster: a new database on the coordinator
// and both workers, migrated and distributed (db.CitusDistribute with
// CitusShards shards), dropped when the test ends. It skips the test when
// no Citus is installed.
func CitusURL(t testing.TB) string {
	t.Helper()
	url := CitusEmptyURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := db.Migrate(ctx, url); err != nil {
		t.Fatalf("dbtest: citus: %v", err)
	}
	if _, err := db.CitusDistribute(ctx, url, CitusShards); err != nil {
		t.Fatalf("dbtest: citus: %v", err)
	}
	return url
}

// CitusEmptyURL is a new empty database with the citus extension on the
// coordinator and both workers, the workers added: nothing migrated.
func CitusEmptyURL(t testing.TB) string {
	t.Helper()
	SkipWithoutCitus(t)
	if err := citusC.start(); err != nil {
		t.Fatalf("dbtest: citus: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	name := "c_" + randHex(8)
	nodes := []*localpg.Cluster{citusC.coord, citusC.workers[0], citusC.workers[1]}
	for _, n := range nodes {
		if err := exec(ctx, n.URL("postgres"), "CREATE DATABASE "+name); err != nil {
			t.Fatalf("dbtest: citus: create database on port %d: %v", n.Port, err)
		}
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, n := range nodes {
			_ = exec(ctx, n.URL("postgres"), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		}
	})
	for _, n := range nodes {
		if err := exec(ctx, n.URL(name), "CREATE EXTENSION citus"); err != nil {
			t.Fatalf("dbtest: citus: create extension on port %d: %v", n.Port, err)
		}
	}
	url := citusC.coord.URL(name)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	// Adding a node copies the connecting role to the worker; two databases
	// registering at once (tests of several packages run in parallel
	// processes) update the worker's one role row together and one fails
	// with "tuple concurrently updated". A file lock takes them in turn.
	unlock, err := lockFile(filepath.Join(citusC.coord.Dir, "add-node.lock"))
	if err != nil {
		t.Fatalf("dbtest: citus: %v", err)
	}
	defer unlock()
	for _, q := range []string{
		fmt.Sprintf("SELECT citus_set_coordinator_host('127.0.0.1', %d)", citusC.coord.Port),
		fmt.Sprintf("SELECT citus_add_node('127.0.0.1', %d)", citusC.workers[0].Port),
		fmt.Sprintf("SELECT citus_add_node('127.0.0.1', %d)", citusC.workers[1].Port),
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("dbtest: citus: %s: %v", q, err)
		}
	}
	return url
}

// CitusTenantsOnBothWorkers returns n tenant keys built from prefix whose
// shards are spread over both workers (at least one on each), so a test
// that uses them crosses nodes.
func CitusTenantsOnBothWorkers(t testing.TB, url, prefix string, n int) []string {
	t.Helper()
	if n < 2 {
		t.Fatal("CitusTenantsOnBothWorkers: want at least two tenants")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	byPort := map[int][]string{}
	for i := 0; i < 4*n+16; i++ {
		key := fmt.Sprintf("%s%d", prefix, i)
		var port int
		err := conn.QueryRow(ctx, `SELECT nodeport FROM citus_shards
			WHERE table_name = 'adapters'::regclass AND shardid = get_shard_id_for_distribution_column('adapters', $1::text)`, key).Scan(&port)
		if err != nil {
			t.Fatal(err)
		}
		byPort[port] = append(byPort[port], key)
	}
	ports := CitusWorkerPorts(t)
	a, b := byPort[ports[0]], byPort[ports[1]]
	if len(a) == 0 || len(b) == 0 {
		t.Fatal(errors.New("dbtest: citus: no tenant key lands on one of the workers"))
	}
	var out []string
	for i := 0; len(out) < n; i++ {
		if i%2 == 0 && i/2 < len(a) {
			out = append(out, a[i/2])
		} else if i/2 < len(b) {
			out = append(out, b[i/2])
		} else {
			out = append(out, a[i/2])
		}
	}
	return out
}

// CitusPlan is what EXPLAIN shows of one statement on the coordinator.
type CitusPlan struct {
	Distributed bool     // planned by Citus (else a coordinator-local table only)
	Tasks       []int    // the Task Count of each distributed job, subplans included
	Subplans    int      // subplans Citus runs first and ships the results of
	Workers     []string // the workers the tasks run on ("host=… port=…"); the coordinator's own steps are not listed
	// InsertSelect is Citus's INSERT … SELECT method ("pull to
	// coordinator", "repartition"), when the statement is one.
	InsertSelect string
}

// OneWorker reports that every task runs on one worker (the statement's
// transaction does not span workers).
func (p CitusPlan) OneWorker() bool { return len(p.Workers) <= 1 }

// SingleTask reports a router plan: one task, no subplans (or no Citus at all).
func (p CitusPlan) SingleTask() bool {
	if !p.Distributed {
		return true
	}
	return p.Subplans == 0 && len(p.Tasks) == 1 && p.Tasks[0] == 1
}

// CitusExplain plans sql with args (as the engine sent them) on the
// database at url and reads its Citus jobs from EXPLAIN's JSON.
func CitusExplain(ctx context.Context, url, sql string, args []any) (CitusPlan, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return CitusPlan{}, err
	}
	defer conn.Close(context.Background())
	pgxuuid.Register(conn.TypeMap())
	if _, err := conn.Exec(ctx, "SET citus.explain_all_tasks = on"); err != nil {
		return CitusPlan{}, err
	}
	var js []byte
	if err := conn.QueryRow(ctx, "EXPLAIN (FORMAT JSON)\n"+sql, args...).Scan(&js); err != nil {
		return CitusPlan{}, err
	}
	coordPort := strconv.Itoa(int(conn.Config().Port))
	var doc any
	if err := json.Unmarshal(js, &doc); err != nil {
		return CitusPlan{}, err
	}
	var p CitusPlan
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				switch k {
				case "Custom Plan Provider":
					if s, _ := x.(string); strings.HasPrefix(s, "Citus") {
						p.Distributed = true
					}
				case "Task Count":
					if n, ok := x.(float64); ok {
						p.Tasks = append(p.Tasks, int(n))
					}
				case "INSERT/SELECT method":
					p.InsertSelect, _ = x.(string)
				case "Node":
					if n, ok := x.(string); ok {
						n, _, _ = strings.Cut(n, " dbname=")
						if !strings.HasSuffix(n, " port="+coordPort) && !slices.Contains(p.Workers, n) {
							p.Workers = append(p.Workers, n)
						}
					}
				case "Subplans":
					if l, ok := x.([]any); ok {
						p.Subplans += len(l)
					}
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
	return p, nil
}

// lockFile takes an exclusive lock on path, held across processes until the
// returned function runs.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		_ = f.Close()
		return nil, err
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		_ = f.Close()
	}, nil
}
