/* The seed's synchronous Postgres driver ("How to implement a driver", 6.2), rebuilt from the seed text
 * as the benchmark's anchor: the linked-in driver that ts-cnode's pg_sync replaces.
 *
 * Taken from the seed as written: the driver entry, our_data_t, start/stop/control, do_connect,
 * do_disconnect, do_select, encode_result. Filled in from the OTP sample it describes (pg_encode.c and
 * the helpers the text names but does not show): encode_ok, encode_error, get_s, ei_x_to_new_binary.
 * Brought up to date so a current emulator loads it (the seed predates both): the extended driver
 * entry (ERL_DRV_EXTENDED_MARKER ...) and control's ErlDrvSSizeT/ErlDrvSizeT signature. Nothing else
 * is changed: PQexec still blocks the scheduler thread for as long as the query runs, which is what the
 * benchmark measures beside ts-cnode.
 */
#include <string.h>
#include <erl_driver.h>
#include <ei.h>
#include <libpq-fe.h>

/* Driver interface declarations */
static ErlDrvData start(ErlDrvPort port, char *command);
static void stop(ErlDrvData drv_data);
static ErlDrvSSizeT control(ErlDrvData drv_data, unsigned int command, char *buf, ErlDrvSizeT len,
                            char **rbuf, ErlDrvSizeT rlen);

static ErlDrvEntry pq_driver_entry = {
    NULL,      /* init */
    start,
    stop,
    NULL,      /* output */
    NULL,      /* ready_input */
    NULL,      /* ready_output */
    "pg_sync", /* the name of the driver */
    NULL,      /* finish */
    NULL,      /* handle */
    control,
    NULL,      /* timeout */
    NULL,      /* outputv */
    NULL,      /* ready_async */
    NULL,      /* flush */
    NULL,      /* call */
    NULL,      /* event */
    ERL_DRV_EXTENDED_MARKER,
    ERL_DRV_EXTENDED_MAJOR_VERSION,
    ERL_DRV_EXTENDED_MINOR_VERSION,
    0,         /* driver_flags: the driver-level lock, as in the seed */
    NULL,      /* handle2 */
    NULL,      /* process_exit */
    NULL       /* stop_select */
};

typedef struct our_data_s {
    PGconn *conn;
} our_data_t;

/* Keep the following definitions in alignment with the
 * defines in seed_pg_sync.erl */
#define DRV_CONNECT 'C'
#define DRV_DISCONNECT 'D'
#define DRV_SELECT 'S'

/* INITIALIZATION AFTER LOADING */
DRIVER_INIT(pq_drv)
{
    return &pq_driver_entry;
}

/* pg_encode.c */
static void encode_ok(ei_x_buff *x)
{
    const char *k_ok = "ok";
    ei_x_encode_atom(x, k_ok);
}

static void encode_error(ei_x_buff *x, PGconn *conn)
{
    const char *k_error = "error";
    ei_x_encode_tuple_header(x, 2);
    ei_x_encode_atom(x, k_error);
    ei_x_encode_string(x, PQerrorMessage(conn));
}

static void encode_result(ei_x_buff *x, PGresult *res, PGconn *conn)
{
    int row, n_rows, col, n_cols;
    switch (PQresultStatus(res)) {
    case PGRES_TUPLES_OK:
        n_rows = PQntuples(res);
        n_cols = PQnfields(res);
        ei_x_encode_tuple_header(x, 2);
        encode_ok(x);
        ei_x_encode_list_header(x, n_rows + 1);
        ei_x_encode_list_header(x, n_cols);
        for (col = 0; col < n_cols; ++col) {
            ei_x_encode_string(x, PQfname(res, col));
        }
        ei_x_encode_empty_list(x);
        for (row = 0; row < n_rows; ++row) {
            ei_x_encode_list_header(x, n_cols);
            for (col = 0; col < n_cols; ++col) {
                ei_x_encode_string(x, PQgetvalue(res, row, col));
            }
            ei_x_encode_empty_list(x);
        }
        ei_x_encode_empty_list(x);
        break;
    case PGRES_COMMAND_OK:
        ei_x_encode_tuple_header(x, 2);
        encode_ok(x);
        ei_x_encode_string(x, PQcmdTuples(res));
        break;
    default:
        encode_error(x, conn);
        break;
    }
}

/* Utilities named in the seed: a zero-terminated copy, and the ei buffer as a driver binary. */
static char *get_s(const char *buf, int len)
{
    char *result = driver_alloc(len + 1);
    memcpy(result, buf, len);
    result[len] = '\0';
    return result;
}

static ErlDrvBinary *ei_x_to_new_binary(ei_x_buff *x)
{
    ErlDrvBinary *bin = driver_alloc_binary(x->index);
    if (bin != NULL)
        memcpy(&bin->orig_bytes[0], x->buff, x->index);
    return bin;
}

/* DRIVER INTERFACE */
static ErlDrvData start(ErlDrvPort port, char *command)
{
    our_data_t *data;
    data = (our_data_t *)driver_alloc(sizeof(our_data_t));
    data->conn = NULL;
    set_port_control_flags(port, PORT_CONTROL_FLAG_BINARY);
    return (ErlDrvData)data;
}

static int do_disconnect(our_data_t *data, ei_x_buff *x);

static void stop(ErlDrvData drv_data)
{
    do_disconnect((our_data_t *)drv_data, NULL);
    driver_free(drv_data);
}

static int do_connect(const char *s, our_data_t *data, ei_x_buff *x);
static int do_select(const char *s, our_data_t *data, ei_x_buff *x);

/* Since we are operating in binary mode, the return value from control
 * is irrelevant, as long as it is not negative. */
static ErlDrvSSizeT control(ErlDrvData drv_data, unsigned int command, char *buf, ErlDrvSizeT len,
                            char **rbuf, ErlDrvSizeT rlen)
{
    int r;
    ei_x_buff x;
    our_data_t *data = (our_data_t *)drv_data;
    char *s = get_s(buf, (int)len);
    ei_x_new_with_version(&x);
    switch (command) {
    case DRV_CONNECT:
        r = do_connect(s, data, &x);
        break;
    case DRV_DISCONNECT:
        r = do_disconnect(data, &x);
        break;
    case DRV_SELECT:
        r = do_select(s, data, &x);
        break;
    default:
        r = -1;
        break;
    }
    *rbuf = (char *)ei_x_to_new_binary(&x);
    ei_x_free(&x);
    driver_free(s);
    return r;
}

static int do_connect(const char *s, our_data_t *data, ei_x_buff *x)
{
    PGconn *conn = PQconnectdb(s);
    if (PQstatus(conn) != CONNECTION_OK) {
        encode_error(x, conn);
        PQfinish(conn);
        conn = NULL;
    } else {
        encode_ok(x);
    }
    data->conn = conn;
    return 0;
}

static int do_disconnect(our_data_t *data, ei_x_buff *x)
{
    if (data->conn == NULL)
        return 0;
    PQfinish(data->conn);
    data->conn = NULL;
    if (x != NULL)
        encode_ok(x);
    return 0;
}

static int do_select(const char *s, our_data_t *data, ei_x_buff *x)
{
    PGresult *res = PQexec(data->conn, s);
    encode_result(x, res, data->conn);
    PQclear(res);
    return 0;
}
