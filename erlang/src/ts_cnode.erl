%% Where the seed drivers' TypeScript node lives, and how long to wait for it.
%%
%% The node is, in order: the application environment (ts_cnode, node), the OS
%% environment (TS_CNODE_NODE; a bare name gets "@" and this host appended), else
%% tsnode@<the host part of node()>. Timeouts (milliseconds or infinity) come from the
%% application environment of ts_cnode:
%%   call_timeout     driver requests: connect, disconnect, permutations (default 60000)
%%   query_timeout    select/2,3 (default infinity, as PQexec waits for as long as it takes);
%%                    a select that outlasts it is cancelled (pg_query:cancel/2)
%% A timeout set to anything but a non-negative integer or infinity raises
%% error({invalid_timeout, Key, Value}) in the call that reads it, as receive ... after
%% does for a bad timeout, rather than being replaced by the default unnoticed.
%%   max_query_bytes  a query larger than this is refused before it is sent (default 32 MiB),
%%                    so one request cannot swamp the distribution link; a value that is not a
%%                    non-negative integer raises error({invalid_env, max_query_bytes, Value})
-module(ts_cnode).

-export([node/0, call_timeout/0, query_timeout/0, max_query_bytes/0]).
-export([call/3, exit_message/1, deadline/1, remaining/1]).

-define(DEFAULT_NAME, "tsnode").
-define(DEFAULT_CALL_TIMEOUT, 60000).
-define(DEFAULT_QUERY_TIMEOUT, infinity).
-define(DEFAULT_MAX_QUERY_BYTES, 33554432).

-spec node() -> node().
node() ->
    case application:get_env(ts_cnode, node) of
        {ok, N} when is_atom(N), N =/= undefined -> N;
        {ok, N} when is_list(N), N =/= [] -> qualify(N);
        {ok, N} when is_binary(N), N =/= <<>> -> qualify(binary_to_list(N));
        _ ->
            case os:getenv("TS_CNODE_NODE") of
                false -> qualify(?DEFAULT_NAME);
                "" -> qualify(?DEFAULT_NAME);
                S -> qualify(S)
            end
    end.

%% "name" -> 'name@<host of this node>'; "name@host" is taken as it is.
qualify(Name) ->
    case lists:member($@, Name) of
        true -> list_to_atom(Name);
        false -> list_to_atom(Name ++ "@" ++ local_host())
    end.

local_host() ->
    case string:split(atom_to_list(erlang:node()), "@") of
        [_, Host] when Host =/= "nohost" -> Host;
        _ ->
            {ok, Host} = inet:gethostname(),
            Host
    end.

-spec call_timeout() -> timeout().
call_timeout() -> env_timeout(call_timeout, ?DEFAULT_CALL_TIMEOUT).

-spec query_timeout() -> timeout().
query_timeout() -> env_timeout(query_timeout, ?DEFAULT_QUERY_TIMEOUT).

-spec max_query_bytes() -> non_neg_integer().
max_query_bytes() ->
    case application:get_env(ts_cnode, max_query_bytes) of
        undefined -> ?DEFAULT_MAX_QUERY_BYTES;
        {ok, N} when is_integer(N), N >= 0 -> N;
        {ok, Bad} -> erlang:error({invalid_env, max_query_bytes, Bad})
    end.

%% A timeout as a point in monotonic time, and what is left of it (ms, or infinity).
-spec deadline(timeout()) -> integer() | infinity.
deadline(infinity) -> infinity;
deadline(Ms) -> erlang:monotonic_time(millisecond) + Ms.

-spec remaining(integer() | infinity) -> timeout().
remaining(infinity) -> infinity;
remaining(Deadline) -> max(0, Deadline - erlang:monotonic_time(millisecond)).

env_timeout(Key, Default) ->
    case application:get_env(ts_cnode, Key) of
        undefined -> Default;
        {ok, infinity} -> infinity;
        {ok, T} when is_integer(T), T >= 0 -> T;
        {ok, Bad} -> erlang:error({invalid_timeout, Key, Bad})
    end.

%% gen_server:call that turns the caller-side exits (node down, no such process,
%% timeout) into {exit, Reason} instead of crashing the caller.
-spec call(gen_server:server_ref(), term(), timeout()) -> term() | {exit, term()}.
call(Server, Request, Timeout) ->
    try
        gen_server:call(Server, Request, Timeout)
    catch
        exit:{Reason, {gen_server, call, _}} -> {exit, Reason}
    end.

%% The text a libpq user would see for a caller-side failure; the seed's {error, Msg}
%% carries a string.
-spec exit_message(term()) -> string().
exit_message(timeout) -> "timeout expired\n";
exit_message(noproc) -> "no connection to the server\n";
exit_message(normal) -> "no connection to the server\n";
exit_message({nodedown, Node}) ->
    lists:flatten(io_lib:format("ts-cnode node ~s is not reachable\n", [Node]));
exit_message(noconnection) -> "ts-cnode node is not reachable\n";
exit_message(Reason) ->
    lists:flatten(io_lib:format("ts-cnode session ended: ~0p\n", [Reason])).
