#include <libpq-fe.h>

/* Pipeline mode (several statements sent at once, their results read after) came with libpq 14. With an older
 * libpq these report that it is not there, and gallra sends a pipeline's statements one at a time. */
#ifdef LIBPQ_HAS_PIPELINING
static inline int gallra_pipelining(void) { return 1; }
static inline int gallra_enter_pipeline_mode(PGconn *conn) { return PQenterPipelineMode(conn); }
static inline int gallra_exit_pipeline_mode(PGconn *conn) { return PQexitPipelineMode(conn); }
static inline int gallra_pipeline_sync(PGconn *conn) { return PQpipelineSync(conn); }
static inline int gallra_is_pipeline_sync(const PGresult *result) {
    return PQresultStatus(result) == PGRES_PIPELINE_SYNC;
}
static inline int gallra_is_pipeline_aborted(const PGresult *result) {
    return PQresultStatus(result) == PGRES_PIPELINE_ABORTED;
}
#else
static inline int gallra_pipelining(void) { return 0; }
static inline int gallra_enter_pipeline_mode(PGconn *conn) { (void)conn; return 0; }
static inline int gallra_exit_pipeline_mode(PGconn *conn) { (void)conn; return 0; }
static inline int gallra_pipeline_sync(PGconn *conn) { (void)conn; return 0; }
static inline int gallra_is_pipeline_sync(const PGresult *result) { (void)result; return 0; }
static inline int gallra_is_pipeline_aborted(const PGresult *result) { (void)result; return 0; }
#endif
