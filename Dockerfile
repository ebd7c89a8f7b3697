# syntax=docker/dockerfile:1
# Multi-stage build: a static dripdrop binary on a distroless base, run as
# an unprivileged user. Build: docker build -t dripdrop .
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=devel
ARG COMMIT=unknown
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
      -o /out/dripdrop ./cmd/dripdrop

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/dripdrop /usr/local/bin/dripdrop
USER nonroot:nonroot
EXPOSE 8080
ENV LISTEN_ADDR=:8080 LOG_FORMAT=json
ENTRYPOINT ["/usr/local/bin/dripdrop"]
CMD ["serve"]
