# Build: a static binary (no cgo), so the runtime image needs nothing else.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/hotzone ./cmd/hotzone \
 && mkdir -p /out/data

# Run: distroless static, non-root; /data holds the bbolt file and keys.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/hotzone /usr/local/bin/hotzone
COPY --from=build --chown=nonroot:nonroot /out/data /data
USER nonroot:nonroot
ENV HOTZONE_ADDR=:8080 HOTZONE_DATA=/data
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 CMD ["/usr/local/bin/hotzone", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/hotzone"]
CMD ["serve"]
