#include "server/http_listener.h"

#include <httplib.h>

#include "server/grpc_listener.h"

namespace ff {

Result<std::unique_ptr<HttpListener>> HttpListener::Start(const std::string& listen,
                                                          const MetricsRegistry* metrics) {
  FF_ASSIGN_OR_RETURN(HostPort hp, SplitListenAddress(listen));
  std::unique_ptr<HttpListener> l(new HttpListener());
  l->server_ = std::make_unique<httplib::Server>();
  l->server_->Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  if (metrics) {
    l->server_->Get("/metrics", [metrics](const httplib::Request&, httplib::Response& res) {
      res.set_content(metrics->Exposition(), "text/plain; version=0.0.4");
    });
  }
  int port = hp.port == 0 ? l->server_->bind_to_any_port(hp.host)
                          : (l->server_->bind_to_port(hp.host, hp.port) ? hp.port : -1);
  if (port <= 0) {
    return Unavailable("cannot listen on '" + listen + "' for HTTP: address in use or invalid");
  }
  l->address_ = hp.host + ":" + std::to_string(port);
  httplib::Server* s = l->server_.get();
  l->thread_ = std::thread([s] { s->listen_after_bind(); });
  return l;
}

HttpListener::~HttpListener() { Stop(); }

void HttpListener::Stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace ff
