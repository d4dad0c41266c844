#pragma once
// A private PostgreSQL server for one test, from Debian's postgresql package: a cluster made by
// initdb (once per build tree, then copied) in a temporary directory, listening on 127.0.0.1 at a free port with fsync off,
// password authentication (SCRAM) for TCP clients. Stopped and removed at scope end, also when
// the test fails; the server gets SIGINT if the test process dies first (parent-death signal).
// Running as root, the server runs as the `postgres` system user (initdb refuses root).
#include <filesystem>
#include <memory>
#include <string>

#include "tests/support/process.hpp"
#include "tests/support/temp_dir.hpp"

namespace mcimd::test {

class PostgresServer {
 public:
  // Throws std::runtime_error, failing the test, when the server cannot be made or started.
  PostgresServer();
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  // Creates an empty database and returns its connection URI (role, password, host, port).
  std::string create_database(const std::string& name);
  // The URI of a database with another password, for refusals.
  std::string uri(const std::string& database, const std::string& password) const;
  const std::string& role() const { return role_; }
  const std::string& password() const { return password_; }
  int port() const { return port_; }
  // The server's log so far, for failure messages.
  std::string log() const;

 private:
  std::vector<std::string> as_server_user(std::vector<std::string> argv) const;
  std::string binary(const std::string& name) const;
  void init_cluster();
  void make_cluster(const std::filesystem::path& data) const;
  void copy_tree(const std::filesystem::path& from, const std::filesystem::path& to) const;
  void set_password();
  bool start_on(int port);

  TempDir dir_;
  std::filesystem::path bin_dir_;
  std::string role_ = "mcimd";
  std::string password_;
  int port_ = 0;
  bool as_postgres_user_ = false;
  std::unique_ptr<Process> server_;
};

}  // namespace mcimd::test
