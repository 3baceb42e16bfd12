%% The driver pool of the seeds, served by the TypeScript node: processes registered
%% there as some_driver_01 .. some_driver_NN. A client picks one by its scheduler id,
%% exactly as the efficiency guide picks a port, so callers on one scheduler always
%% share one driver queue and never contend with the other schedulers.
%%
%% The count is 16 (the guide's ?PORT_NAMES()); the application environment
%% (ts_cnode, drivers) may set another count, which must match the node's.
-module(some_driver).

-export([client_port/0, port_names/0, call/1, call/2]).
-export([whoami/0, stats/1, driver_name/1]).

-define(PORT_NAMES(),
        {some_driver_01, some_driver_02, some_driver_03, some_driver_04,
         some_driver_05, some_driver_06, some_driver_07, some_driver_08,
         some_driver_09, some_driver_10, some_driver_11, some_driver_12,
         some_driver_13, some_driver_14, some_driver_15, some_driver_16}).

%% {RegisteredName, TsNode}: a gen_server:call destination.
-spec client_port() -> {atom(), node()}.
client_port() ->
    Names = port_names(),
    {element(erlang:system_info(scheduler_id) rem tuple_size(Names) + 1, Names),
     ts_cnode:node()}.

-spec port_names() -> tuple().
port_names() ->
    case application:get_env(ts_cnode, drivers) of
        undefined -> ?PORT_NAMES();
        {ok, 16} -> ?PORT_NAMES();
        {ok, N} when is_integer(N), N > 0, N < 100 ->
            list_to_tuple([driver_name(I) || I <- lists:seq(1, N)]);
        %% As the node's --drivers: 1..99. Anything else is a mistake to say, not a default to fall back to.
        {ok, Bad} -> erlang:error({invalid_env, drivers, Bad})
    end.

%% some_driver_01 for 1: two digits at least, as the guide names them.
-spec driver_name(pos_integer()) -> atom().
driver_name(I) ->
    list_to_atom(lists:flatten(io_lib:format("some_driver_~2..0B", [I]))).

%% A request to this scheduler's driver. Caller-side failures (node down, driver not
%% running, timeout) come back as {exit, Reason}, never as a crash.
-spec call(term()) -> term().
call(Request) -> call(Request, ts_cnode:call_timeout()).

-spec call(term(), timeout()) -> term().
call(Request, Timeout) -> ts_cnode:call(client_port(), Request, Timeout).

%% The name of the driver that served this call, as the driver itself reports it.
-spec whoami() -> atom() | {exit, term()}.
whoami() -> call(whoami).

%% A driver's counters: #{name, served, sessions, callers => [{Pid, Count}], ...}.
-spec stats(atom()) -> map() | {exit, term()}.
stats(Name) -> ts_cnode:call({Name, ts_cnode:node()}, stats, ts_cnode:call_timeout()).
