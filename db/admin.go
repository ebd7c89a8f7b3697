package db

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// CreateDatabase creates database name on the server at adminURL unless it
// exists (used by `dripdrop dev` on its managed cluster).
func CreateDatabase(ctx context.Context, adminURL, name string) (err error) {
	defer wrapErr(&err, "create database")
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	return err
}
