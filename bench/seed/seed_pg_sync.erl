%% The seed's pg_sync.erl, as the benchmark's anchor beside ts-cnode's pg_sync. Renamed to seed_pg_sync
%% (the shipped pg_sync is ts-cnode's), loading pg_sync.so from the directory given by the application
%% environment (seed_pg_sync, driver_dir) instead of ".", and with the control codes the seed's C code
%% defines ('C', 'D', 'S'): the seed's Erlang text says 1, 2, 3, which its own driver would refuse.
-module(seed_pg_sync).
-define(DRV_CONNECT, $C).
-define(DRV_DISCONNECT, $D).
-define(DRV_SELECT, $S).
-export([connect/1, disconnect/1, select/2]).

connect(ConnectStr) ->
    {ok, Dir} = application:get_env(seed_pg_sync, driver_dir),
    case erl_ddll:load_driver(Dir, "pg_sync") of
        ok -> ok;
        {error, already_loaded} -> ok;
        E -> exit({error, E})
    end,
    Port = open_port({spawn, "pg_sync"}, []),
    case binary_to_term(port_control(Port, ?DRV_CONNECT, ConnectStr)) of
        ok -> {ok, Port};
        Error -> Error
    end.

disconnect(Port) ->
    R = binary_to_term(port_control(Port, ?DRV_DISCONNECT, "")),
    port_close(Port),
    R.

select(Port, Query) ->
    binary_to_term(port_control(Port, ?DRV_SELECT, Query)).
