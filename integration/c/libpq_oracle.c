/* The libpq reference for integration/drivers-libpq.test.ts: connects with PQconnectdb(argv[1]) and runs
 * each further argument with PQexec (or PQexecParams for "P|query|param|..." with \N for NULL, all
 * parameters in text format; "B|..." is the same here, the test sends those parameters as binaries), printing
 * one line per step the way the seed's pg_sync driver encodes results (pg_encode.c's encode_result):
 *   CONNERR <hex PQerrorMessage>   | OK
 *   TUPLES <hex name>,... then ROW <hex value>,... per row   (PQgetvalue: "" for NULL)
 *   CMD <hex PQcmdTuples>          | ERR <hex PQerrorMessage>
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>

static void hex(const char *s) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) printf("%02x", *p);
}

int main(int argc, char **argv) {
    PGconn *conn = PQconnectdb(argv[1]);
    if (PQstatus(conn) != CONNECTION_OK) {
        printf("CONNERR ");
        hex(PQerrorMessage(conn));
        printf("\n");
        PQfinish(conn);
        return 0;
    }
    printf("OK\n");
    for (int i = 2; i < argc; i++) {
        PGresult *res;
        if (strncmp(argv[i], "P|", 2) == 0 || strncmp(argv[i], "B|", 2) == 0) {
            char *copy = strdup(argv[i] + 2);
            char *fields[64];
            int n = 0;
            for (char *tok = strsep(&copy, "|"); tok && n < 64; tok = strsep(&copy, "|")) fields[n++] = tok;
            const char *values[64];
            for (int k = 1; k < n; k++) values[k - 1] = strcmp(fields[k], "\\N") == 0 ? NULL : fields[k];
            res = PQexecParams(conn, fields[0], n - 1, NULL, values, NULL, NULL, 0);
        } else {
            res = PQexec(conn, argv[i]);
        }
        switch (PQresultStatus(res)) {
        case PGRES_TUPLES_OK:
            printf("TUPLES ");
            for (int c = 0; c < PQnfields(res); c++) {
                if (c) printf(",");
                hex(PQfname(res, c));
            }
            printf("\n");
            for (int r = 0; r < PQntuples(res); r++) {
                printf("ROW ");
                for (int c = 0; c < PQnfields(res); c++) {
                    if (c) printf(",");
                    hex(PQgetvalue(res, r, c));
                }
                printf("\n");
            }
            break;
        case PGRES_COMMAND_OK:
            printf("CMD ");
            hex(PQcmdTuples(res));
            printf("\n");
            break;
        default:
            printf("ERR ");
            hex(PQerrorMessage(conn));
            printf("\n");
            break;
        }
        PQclear(res);
    }
    PQfinish(conn);
    return 0;
}
