// libpq, loaded at run time: the prebuilt Node addon and the C library must load on a machine
// without PostgreSQL's client library, so nothing links it. The first postgres store to connect
// loads libpq.so.5 with dlopen and resolves the few functions below. The prototypes and values
// are copied from libpq-fe.h (PostgreSQL 15; stable since libpq 5 / PostgreSQL 8.0), so that
// building needs no libpq-dev.
#pragma once
#include <string>

#include "core/status.hpp"

namespace liner {
namespace pq {

// Opaque handles, as libpq-fe.h declares them.
struct PGconn;
struct PGresult;
using Oid = unsigned int;

// ConnStatusType: only these two are used (blocking connections).
enum ConnStatusType { CONNECTION_OK = 0, CONNECTION_BAD = 1 };

// ExecStatusType, in libpq-fe.h's order (only the first values are named here).
enum ExecStatusType {
  PGRES_EMPTY_QUERY = 0,
  PGRES_COMMAND_OK = 1,
  PGRES_TUPLES_OK = 2,
  PGRES_COPY_OUT = 3,
  PGRES_COPY_IN = 4,
  PGRES_BAD_RESPONSE = 5,
  PGRES_NONFATAL_ERROR = 6,
  PGRES_FATAL_ERROR = 7,
};

// PGnotify's public fields; libpq allocates it, PQfreemem frees it (fields past `extra` are
// libpq's own and never touched here).
struct PGnotify {
  char* relname;
  int be_pid;
  char* extra;
};

// PQresultErrorField's code for the SQLSTATE (postgres_ext.h).
constexpr int PG_DIAG_SQLSTATE = 'C';

// The functions liner calls, resolved once.
struct Api {
  PGconn* (*PQconnectdb)(const char* conninfo);
  ConnStatusType (*PQstatus)(const PGconn* conn);
  char* (*PQerrorMessage)(const PGconn* conn);
  void (*PQfinish)(PGconn* conn);
  PGresult* (*PQexec)(PGconn* conn, const char* query);
  PGresult* (*PQexecParams)(PGconn* conn, const char* command, int nParams, const Oid* paramTypes,
                            const char* const* paramValues, const int* paramLengths, const int* paramFormats,
                            int resultFormat);
  ExecStatusType (*PQresultStatus)(const PGresult* res);
  char* (*PQresultErrorMessage)(const PGresult* res);
  char* (*PQresultErrorField)(const PGresult* res, int fieldcode);
  int (*PQntuples)(const PGresult* res);
  int (*PQnfields)(const PGresult* res);
  char* (*PQgetvalue)(const PGresult* res, int tup_num, int field_num);
  int (*PQgetlength)(const PGresult* res, int tup_num, int field_num);
  int (*PQgetisnull)(const PGresult* res, int tup_num, int field_num);
  void (*PQclear)(PGresult* res);
  int (*PQsocket)(const PGconn* conn);
  int (*PQconsumeInput)(PGconn* conn);
  PGnotify* (*PQnotifies)(PGconn* conn);
  void (*PQfreemem)(void* ptr);
};

// libpq's functions, loaded on the first call (thread-safe; a failure is remembered, and said
// again on every call). Err::store naming what to install when the library is not there.
Status load(const Api** api);

// For tests: the file name load() tries ("libpq.so.5"; macOS: "libpq.5.dylib"). Takes effect
// only before the first load(); LINER_LIBPQ_NAME in the environment does the same for a process.
void set_library_name_for_test(const std::string& name);

}  // namespace pq
}  // namespace liner
