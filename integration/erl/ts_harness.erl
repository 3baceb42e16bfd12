%% Test agent: evaluates Erlang expressions sent by the TypeScript test harness on stdin.
%% Request line:  Id Base64(Expr)\n
%% Reply line:    @@H Id ok|error Base64(printed) Base64(term_to_binary)\n
%% The node halts when stdin closes, so a crashed test runner never leaves it behind.
-module(ts_harness).
-export([start/0]).

start() ->
    spawn(fun() -> io:format("@@H ready ~s~n", [node()]), loop() end).

loop() ->
    case io:get_line('') of
        eof -> erlang:halt(0);
        {error, _} -> erlang:halt(0);
        Line ->
            case string:split(string:trim(Line), " ") of
                [IdStr, B64] ->
                    Expr = unicode:characters_to_list(base64:decode(B64)),
                    spawn(fun() -> reply(IdStr, run(Expr)) end);
                _ ->
                    ok
            end,
            loop()
    end.

run(Expr) ->
    try
        {ok, Toks, _} = erl_scan:string(Expr),
        {ok, Forms} = erl_parse:parse_exprs(Toks),
        {value, V, _} = erl_eval:exprs(Forms, erl_eval:new_bindings()),
        {ok, V}
    catch
        C:R:S -> {error, {C, R, S}}
    end.

reply(Id, {Status, V}) ->
    Printed = unicode:characters_to_binary(io_lib:print(V, 1, 100000000, -1)),
    Bin = try term_to_binary(V) catch _:_ -> <<>> end,
    io:put_chars(["@@H ", Id, " ", atom_to_list(Status), " ", base64:encode(Printed), " ",
                  base64:encode(Bin), "\n"]).
