package api

import (
	"context"
	"net/http"

	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop/db"
)

// The handler constructors below serve the common shapes: a tenant, maybe
// an {id}, maybe a JSON body, one store call, one JSON answer.

// byID serves a bodyless request on …/{id} (GET, or an action POST).
func byID[T any](fn func(context.Context, string, uuid.UUID) (T, error)) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathID(r, "id")
		if err != nil {
			return err
		}
		v, err := fn(r.Context(), tenantOf(r), id)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, v)
	}
}

// listPage serves a cursor-paginated GET collection.
func listPage[T any](fn func(context.Context, string, db.Page) ([]T, *uuid.UUID, error)) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		p, err := page(r)
		if err != nil {
			return err
		}
		items, next, err := fn(r.Context(), tenantOf(r), p)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, newList(items, next))
	}
}

// create serves a POST that decodes In and answers 201.
func create[In, T any](fn func(context.Context, string, In) (T, error)) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		var in In
		if err := decodeJSON(w, r, &in); err != nil {
			return err
		}
		v, err := fn(r.Context(), tenantOf(r), in)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusCreated, v)
	}
}

// updateByID serves PATCH (or an action POST with a body) on …/{id}.
func updateByID[In, T any](fn func(context.Context, string, uuid.UUID, In) (T, error)) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathID(r, "id")
		if err != nil {
			return err
		}
		var in In
		if err := decodeJSON(w, r, &in); err != nil {
			return err
		}
		v, err := fn(r.Context(), tenantOf(r), id, in)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, v)
	}
}

// deleteByID serves DELETE …/{id}?force=.
func deleteByID(fn func(context.Context, string, uuid.UUID, bool) error) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathID(r, "id")
		if err != nil {
			return err
		}
		force, err := boolQuery(r, "force")
		if err != nil {
			return err
		}
		if err := fn(r.Context(), tenantOf(r), id, force); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}
