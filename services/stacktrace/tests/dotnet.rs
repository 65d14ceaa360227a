//! .NET traces: CoreCLR, .NET Framework and Mono renderings.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use selfheal_stacktrace::{ParseOptions, ParsedTrace, Relation, Runtime, parse};

fn p(text: &str) -> ParsedTrace {
    let t = parse(text, &ParseOptions::default()).expect("a trace");
    assert_eq!(t.runtime, Runtime::Dotnet, "{t:#?}");
    t
}

#[test]
fn unhandled_exception_core() {
    let text = "Unhandled exception. System.DivideByZeroException: Attempted to divide by zero.
   at Acme.Pricing.Calculator.UnitPrice(Decimal total, Int32 count) in /src/Acme.Pricing/Calculator.cs:line 14
   at Acme.Pricing.Program.<Main>$(String[] args) in /src/Acme.Pricing/Program.cs:line 5
";
    let t = p(text);
    assert_eq!(t.exception.ty, "System.DivideByZeroException");
    assert_eq!(t.exception.message, "Attempted to divide by zero.");
    let f = &t.frames[0];
    assert_eq!(f.module.as_deref(), Some("Acme.Pricing.Calculator"));
    assert_eq!(f.function, "UnitPrice");
    assert_eq!(f.file.as_deref(), Some("/src/Acme.Pricing/Calculator.cs"));
    assert_eq!(f.line, Some(14));
    assert_eq!(t.frames[1].function, "<Main>$");
    assert_eq!(t.culprit.map(|f| f.line), Some(Some(14)));
}

#[test]
fn inner_exceptions_on_their_own_lines() {
    let text = "System.InvalidOperationException: Could not load price list
 ---> System.IO.FileNotFoundException: Could not find file '/app/prices.json'.
File name: '/app/prices.json'
   at Microsoft.Win32.SafeHandles.SafeFileHandle.Open(String fullPath, FileMode mode)
   at System.IO.File.ReadAllText(String path)
   at Acme.Pricing.PriceList.Load(String path) in /src/Acme.Pricing/PriceList.cs:line 31
   --- End of inner exception stack trace ---
   at Acme.Pricing.PriceList.Load(String path) in /src/Acme.Pricing/PriceList.cs:line 36
   at Acme.Pricing.Startup.Configure() in /src/Acme.Pricing/Startup.cs:line 12
";
    let t = p(text);
    assert_eq!(t.exception.ty, "System.InvalidOperationException");
    assert_eq!(t.exception.message, "Could not load price list");
    assert_eq!(t.frames.len(), 2);
    assert_eq!(t.frames[0].line, Some(36));
    assert_eq!(t.causes.len(), 1);
    let c = &t.causes[0];
    assert_eq!(c.ty, "System.IO.FileNotFoundException");
    assert_eq!(c.relation, Relation::Inner);
    assert_eq!(c.message, "Could not find file '/app/prices.json'.");
    assert_eq!(c.frames.len(), 3);
    assert!(!c.frames[0].in_app);
    assert_eq!(t.culprit.map(|f| f.line), Some(Some(31)));
}

#[test]
fn inline_inner_exceptions_framework_style() {
    let text = "System.Exception: Order failed ---> System.Data.SqlClient.SqlException: Timeout expired ---> System.ComponentModel.Win32Exception: The wait operation timed out
   --- End of inner exception stack trace ---
   at System.Data.SqlClient.SqlConnection.OnError(SqlException exception)
   at Acme.Orders.Repo.Save(Order o) in C:\\build\\Acme.Orders\\Repo.cs:line 88
   --- End of inner exception stack trace ---
   at Acme.Orders.Service.Place(Order o) in C:\\build\\Acme.Orders\\Service.cs:line 40
";
    let t = p(text);
    let tys: Vec<&str> = t.causes.iter().map(|c| c.ty.as_str()).collect();
    assert_eq!(
        tys,
        [
            "System.Data.SqlClient.SqlException",
            "System.ComponentModel.Win32Exception"
        ]
    );
    assert!(t.causes[1].frames.is_empty());
    assert_eq!(t.causes[0].frames.len(), 2);
    assert_eq!(
        t.causes[0].frames[1].file.as_deref(),
        Some("C:\\build\\Acme.Orders\\Repo.cs")
    );
    // The root cause has no frames; the next one out has the culprit.
    assert_eq!(t.culprit.map(|f| (f.function, f.line)), Some(("Save".into(), Some(88))));
}

#[test]
fn async_state_machines_and_lambdas() {
    let text = "System.NullReferenceException: Object reference not set to an instance of an object.
   at Acme.Cart.CartService.<GetTotalAsync>d__4.MoveNext() in /src/Cart/CartService.cs:line 57
--- End of stack trace from previous location ---
   at System.Runtime.CompilerServices.TaskAwaiter.ThrowForNonSuccess(Task task)
   at Acme.Cart.CartController.<>c__DisplayClass2_0.<Get>b__0(Item i) in /src/Cart/CartController.cs:line 22
   at Acme.Cart.CartController.<Get>g__Sum|2_1(List`1 items) in /src/Cart/CartController.cs:line 30
   at Acme.Cart.Money..ctor(Decimal amount) in /src/Cart/Money.cs:line 9
   at Microsoft.AspNetCore.Mvc.Infrastructure.ActionMethodExecutor.TaskOfIActionResultExecutor.Execute(IActionResultTypeMapper mapper, ObjectMethodExecutor executor, Object controller, Object[] arguments)
";
    let t = p(text);
    let f: Vec<(Option<&str>, &str, bool)> = t
        .frames
        .iter()
        .map(|f| (f.module.as_deref(), f.function.as_str(), f.in_app))
        .collect();
    assert_eq!(f[0], (Some("Acme.Cart.CartService"), "GetTotalAsync", true));
    assert!(!f[1].2);
    assert_eq!(
        f[2],
        (Some("Acme.Cart.CartController.<>c__DisplayClass2_0"), "<Get>b__0", true)
    );
    assert_eq!(f[3].1, "<Get>g__Sum|2_1");
    assert_eq!(f[4], (Some("Acme.Cart.Money"), ".ctor", true));
    assert!(!f[5].2);
    assert_eq!(t.culprit.map(|f| f.function), Some("GetTotalAsync".into()));
}

#[test]
fn aspnet_core_logger_block() {
    let text = "fail: Microsoft.AspNetCore.Diagnostics.DeveloperExceptionPageMiddleware[1]
      An unhandled exception has occurred while executing the request.
      System.ArgumentOutOfRangeException: Specified argument was out of the range of valid values. (Parameter 'quantity')
         at Acme.Api.PriceEndpoint.Handle(Int32 quantity) in /src/Acme.Api/PriceEndpoint.cs:line 19
         at lambda_method1(Closure, Object, HttpContext)
         at Microsoft.AspNetCore.Routing.EndpointMiddleware.Invoke(HttpContext httpContext)
";
    let t = p(text);
    assert_eq!(t.exception.ty, "System.ArgumentOutOfRangeException");
    assert!(t.exception.message.ends_with("(Parameter 'quantity')"));
    assert_eq!(t.frames.len(), 3);
    assert_eq!(t.culprit.map(|f| f.line), Some(Some(19)));
}

#[test]
fn mono_format() {
    let text = "Unhandled Exception:
System.IndexOutOfRangeException: Index was outside the bounds of the array.
  at Acme.Game.Board.Cell (System.Int32 x, System.Int32 y) [0x0000c] in /home/dev/game/Board.cs:27
  at Acme.Game.Board.Neighbours (System.Int32 x) [0x00003] in <8f2c484307284b51944a1a13a14c0266>:0
  at (wrapper managed-to-native) System.Object.__icall_wrapper_mono_gc_alloc_obj(intptr,intptr)
  at Acme.Game.Program.Main (System.String[] args) [0x00001] in /home/dev/game/Program.cs:9
";
    let t = p(text);
    assert_eq!(t.exception.ty, "System.IndexOutOfRangeException");
    assert_eq!(t.frames.len(), 4);
    assert_eq!(t.frames[0].file.as_deref(), Some("/home/dev/game/Board.cs"));
    assert_eq!(t.frames[0].line, Some(27));
    assert_eq!(t.frames[1].file, None);
    assert_eq!(t.frames[1].line, None);
    assert!(!t.frames[2].in_app);
    assert_eq!(t.culprit.map(|f| f.function), Some("Cell".into()));
}

#[test]
fn aggregate_exception_members() {
    let text = "System.AggregateException: One or more errors occurred. (boom A) (boom B)
 ---> System.InvalidOperationException: boom A
   at Acme.Jobs.A.Run() in /src/Jobs/A.cs:line 10
   --- End of inner exception stack trace ---
   at System.Threading.Tasks.Task.Wait()
   at Acme.Jobs.Runner.RunAll() in /src/Jobs/Runner.cs:line 20
 ---> (Inner Exception #1) System.InvalidOperationException: boom B
   at Acme.Jobs.B.Run() in /src/Jobs/B.cs:line 11<---
";
    let t = p(text);
    assert_eq!(t.causes.len(), 2);
    assert_eq!(t.causes[0].message, "boom A");
    assert!(t.causes[0].primary);
    assert_eq!(t.causes[1].relation, Relation::GroupMember);
    assert!(!t.causes[1].primary);
    assert_eq!(t.causes[1].frames.len(), 1);
    assert_eq!(t.culprit.map(|f| f.line), Some(Some(10)));
}
